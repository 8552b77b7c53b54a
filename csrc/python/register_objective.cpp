#include <mutex>

#include "backpropx/objective.hpp"
#include "python/bindings.hpp"

namespace bpx::python {

namespace {

using Labels = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;

// The C++ objective plus the Python objects whose memory it reads.
template <class T>
struct ObjectiveHolder {
  py::object network_owner, x_owner, y_owner, labels_owner, weights_owner;
  NetworkHolder<T>* network = nullptr;
  std::unique_ptr<FullBatchObjective<T>> objective;
  double scale = 1;
};

// A reference that keeps X's memory alive (a CsrHolder copy shares its arrays).
template <class T>
py::object keep_alive(const CArray<T>& X) {
  return py::reinterpret_borrow<py::object>(X);
}
template <class T>
py::object keep_alive(const CsrHolder<T>& X) {
  return py::cast(X);
}

template <class T, class XArray>
std::unique_ptr<ObjectiveHolder<T>> make_objective(py::object network, const XArray& X, std::optional<CArray<T>> y,
                                                   std::optional<Labels> labels, const std::string& loss,
                                                   std::optional<CArray<T>> weights, double l2, double scale,
                                                   std::size_t chunk) {
  auto h = std::make_unique<ObjectiveHolder<T>>();
  h->network = &network.cast<NetworkHolder<T>&>();
  Network<T>& net = *h->network->net;
  const auto [x, n] = as_input(X, net, "X");
  Targets<T> t = make_targets<T>(y, labels, weights, n, net.out_features(), net.rows_per_sample());
  if (!(scale > 0) || !std::isfinite(scale)) throw py::value_error("scale must be a positive number");
  h->objective = std::make_unique<FullBatchObjective<T>>(net, x, t, n, loss_from_name(loss), l2, chunk);
  h->scale = scale;
  h->network_owner = std::move(network);
  h->x_owner = keep_alive<T>(X);
  h->y_owner = py::cast(y);
  h->labels_owner = py::cast(labels);
  h->weights_owner = py::cast(weights);
  return h;
}

template <class T>
void bind_objective(py::module_& m) {
  using Holder = ObjectiveHolder<T>;
  const std::string name = std::string("Objective_") + dtype_suffix<T>();
  py::class_<Holder>(m, name.c_str())
      .def(py::init(&make_objective<T, CsrHolder<T>>), py::arg("network"), py::arg("X"), py::arg("y"),
           py::arg("labels"), py::arg("loss"), py::arg("weights"), py::arg("l2"), py::arg("scale"),
           py::arg("chunk") = 0)
      .def(py::init(&make_objective<T, CArray<T>>), py::arg("network"), py::arg("X"), py::arg("y"),
           py::arg("labels"), py::arg("loss"), py::arg("weights"), py::arg("l2"), py::arg("scale"),
           py::arg("chunk") = 0,
           "scale * (mean loss + L2 penalty) over all rows, and its gradient, as a function of the "
           "flat parameter vector, over chunks of `chunk` rows (0: automatic); X, y and weights must not "
           "change while it lives")
      .def("__call__", [](Holder& h, const py::array_t<double, py::array::c_style | py::array::forcecast>& w) {
        const std::size_t P = h.network->net->num_params();
        if (w.ndim() != 1 || static_cast<std::size_t>(w.shape(0)) != P)
          throw py::value_error("expected a vector of " + std::to_string(P) + " parameters");
        py::array_t<double> grad(static_cast<py::ssize_t>(P));
        const double* wp = w.data();
        double* gp = grad.mutable_data();
        double value = 0;
        {
          py::gil_scoped_release release;
          std::unique_lock lock(h.network->mutex);
          h.network->manual.pending = false;  // new weights end a pending manual forward
          value = h.objective->evaluate(wp, gp, h.scale);
        }
        return py::make_tuple(value, grad);
      }, py::arg("w"), "(objective, gradient) at w; leaves the network's parameters at w")
      .def_property_readonly("evaluations", [](const Holder& h) { return h.objective->evaluations(); });
}

}  // namespace

void register_objective(py::module_& m) {
  bind_objective<float>(m);
  bind_objective<double>(m);
}

}  // namespace bpx::python
