#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>

#include "backpropx/layers.hpp"
#include "python/bindings.hpp"

namespace bpx::python {

namespace {

using Labels = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;

LayerConfig to_config(const py::dict& d) {
  LayerConfig c;
  for (auto item : d) {
    const std::string key = py::cast<std::string>(item.first);
    py::handle v = item.second;
    if (key == "kind") c.kind = py::cast<std::string>(v);
    else if (py::isinstance<py::bool_>(v)) c.ints[key] = py::cast<bool>(v) ? 1 : 0;
    else if (py::isinstance<py::int_>(v)) c.ints[key] = py::cast<long long>(v);
    else if (py::isinstance<py::float_>(v)) c.reals[key] = py::cast<double>(v);
    else if (py::isinstance<py::str>(v)) c.strings[key] = py::cast<std::string>(v);
    else if (!v.is_none())
      throw py::type_error("layer option '" + key + "' has unsupported type " +
                           std::string(py::str(v.get_type().attr("__name__"))));
  }
  return c;
}

// A NumPy view of C++ memory that keeps `owner` alive.
template <class T>
py::array_t<T> view(T* data, const Shape& shape, py::handle owner) {
  std::vector<py::ssize_t> dims(shape.begin(), shape.end());
  return py::array_t<T>(dims, data, owner);
}

template <class T>
void bind_network(py::module_& m) {
  using Holder = NetworkHolder<T>;
  const std::string name = std::string("Network_") + dtype_suffix<T>();
  py::class_<Holder>(m, name.c_str())
      .def(py::init([](const py::list& layers, std::uint64_t seed) {
             std::vector<std::unique_ptr<Layer<T>>> built;
             for (auto item : layers) built.push_back(make_layer<T>(to_config(py::cast<py::dict>(item))));
             auto h = std::make_unique<Holder>();
             h->net = std::make_unique<Network<T>>(std::move(built), seed);
             return h;
           }),
           py::arg("layers"), py::arg("seed"))
      .def_property_readonly("in_features", [](const Holder& h) { return h.net->in_features(); })
      .def_property_readonly("out_features", [](const Holder& h) { return h.net->out_features(); })
      .def_property_readonly("num_layers", [](const Holder& h) { return h.net->num_layers(); })
      .def_property_readonly("num_params", [](const Holder& h) { return h.net->num_params(); })
      .def("tensors", [](const Holder& h) {
        py::list out;
        for (const TensorInfo& t : h.net->tensors())
          out.append(py::make_tuple(t.layer, t.name, py::tuple(py::cast(t.shape)), t.offset));
        return out;
      }, "(layer, name, shape, offset) of every parameter tensor, in storage order")
      .def("param_view", [](py::object self, std::size_t index) {
        Holder& h = self.cast<Holder&>();
        const TensorInfo& t = h.net->tensors().at(index);
        return view<T>(h.net->params() + t.offset, t.shape, self);
      }, py::arg("index"), "A writable view of parameter tensor `index` (no copy)")
      .def("grad_view", [](py::object self, std::size_t index) {
        Holder& h = self.cast<Holder&>();
        const TensorInfo& t = h.net->tensors().at(index);
        return view<T>(h.net->grads() + t.offset, t.shape, self);
      }, py::arg("index"))
      .def("flat_params", [](py::object self) {
        Holder& h = self.cast<Holder&>();
        return view<T>(h.net->params(), {h.net->num_params()}, self);
      })
      .def("flat_grads", [](py::object self) {
        Holder& h = self.cast<Holder&>();
        return view<T>(h.net->grads(), {h.net->num_params()}, self);
      })
      .def("assign_params", [](Holder& h, const CArray<T>& flat) {
        if (flat.ndim() != 1 || static_cast<std::size_t>(flat.shape(0)) != h.net->num_params())
          throw py::value_error("expected " + std::to_string(h.net->num_params()) + " parameters");
        py::gil_scoped_release release;
        std::unique_lock lock(h.mutex);
        std::memcpy(h.net->params(), flat.data(), h.net->num_params() * sizeof(T));
      }, py::arg("flat"), "Copy a whole flat parameter vector in, excluding concurrent predicts")
      .def("set_trainable", [](Holder& h, std::size_t k, bool on) { h.net->layer(k).trainable = on; })
      .def("trainable", [](const Holder& h, std::size_t k) { return h.net->layer(k).trainable; })
      .def("activation", [](const Holder& h, std::size_t k) {
        return std::string(activation_name(h.net->layer(k).activation()));
      })
      .def("predict", [](const Holder& h, const CArray<T>& X) {
        const std::size_t n = check_rows(X.request(), h.net->in_features(), "X");
        py::array_t<T> out({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(h.net->out_features())});
        T* dst = out.mutable_data();
        const T* src = X.data();
        {
          py::gil_scoped_release release;
          std::shared_lock lock(h.mutex);
          h.net->predict(src, n, dst);
        }
        return out;
      }, py::arg("X"))
      .def("loss_and_gradients", [](Holder& h, const CArray<T>& X, std::optional<CArray<T>> y,
                                    std::optional<Labels> labels, const std::string& loss_name,
                                    std::optional<CArray<T>> weights) {
        const Loss loss = loss_from_name(loss_name);
        const std::size_t n = check_rows(X.request(), h.net->in_features(), "X");
        if (n == 0) throw py::value_error("X has no samples");
        Targets<T> t = make_targets<T>(y, labels, weights, n, h.net->out_features());
        const T* x = X.data();
        py::gil_scoped_release release;
        std::unique_lock lock(h.mutex);
        Workspace<T> ws = h.net->make_workspace(n, Network<T>::Use::training);
        h.net->zero_grad();
        const double value = h.net->forward_backward(x, t, n, loss, ws, Pass{});
        if (!std::isfinite(value))
          throw NonFiniteError("the loss is not finite: the network's weights or inputs overflow");
        return value;
      }, py::arg("X"), py::arg("y"), py::arg("labels"), py::arg("loss"),
         py::arg("weights") = py::none(), "Mean loss of (X, targets); gradients are left in grad_view()")
      .def("evaluate", [](const Holder& h, const CArray<T>& X, std::optional<CArray<T>> y,
                          std::optional<Labels> labels, const std::string& loss_name,
                          std::optional<CArray<T>> weights) {
        const Loss loss = loss_from_name(loss_name);
        const std::size_t n = check_rows(X.request(), h.net->in_features(), "X");
        Targets<T> t = make_targets<T>(y, labels, weights, n, h.net->out_features());
        const T* x = X.data();
        py::gil_scoped_release release;
        std::shared_lock lock(h.mutex);
        return h.net->evaluate(x, t, n, loss);
      }, py::arg("X"), py::arg("y"), py::arg("labels"), py::arg("loss"),
         py::arg("weights") = py::none(), "(mean loss, number of correct predictions)");
}

}  // namespace

void register_network(py::module_& m) {
  bind_network<float>(m);
  bind_network<double>(m);
}

}  // namespace bpx::python
