#include "backpropx/optimizers.hpp"
#include "python/bindings.hpp"

namespace bpx::python {

namespace {

template <class T>
void bind_optimizer(py::module_& m) {
  const std::string name = std::string("Optimizer_") + dtype_suffix<T>();
  py::class_<Optimizer<T>>(m, name.c_str())
      .def(py::init([](const std::string& kind, const std::map<std::string, double>& values) {
             return make_optimizer<T>(OptimizerConfig{kind, values});
           }),
           py::arg("name"), py::arg("values"))
      .def_property_readonly("name", &Optimizer<T>::name)
      .def_readwrite("lr", &Optimizer<T>::lr)
      .def_property("steps", &Optimizer<T>::steps, &Optimizer<T>::set_steps)
      .def("state_names", &Optimizer<T>::state_names)
      .def("get_state", [](Optimizer<T>& o) {
        py::list out;
        for (const auto& buf : o.state()) out.append(py::array_t<T>(buf.size(), buf.data()));
        return out;
      }, "Copies of the state buffers, in state_names() order (empty before the first step)")
      .def("set_state", [](Optimizer<T>& o, const std::vector<CArray<T>>& buffers, std::int64_t steps) {
        std::vector<std::vector<T>> state;
        for (const auto& b : buffers) state.emplace_back(b.data(), b.data() + b.size());
        o.load_state(std::move(state), steps);
      }, py::arg("buffers"), py::arg("steps"))
      .def("reset", &Optimizer<T>::reset);
}

}  // namespace

void register_optimizers(py::module_& m) {
  bind_optimizer<float>(m);
  bind_optimizer<double>(m);
}

}  // namespace bpx::python
