#include "python/bindings.hpp"

namespace bpx::python {

template <>
const char* dtype_suffix<float>() {
  return "float32";
}
template <>
const char* dtype_suffix<double>() {
  return "float64";
}

std::size_t check_rows(const py::buffer_info& info, std::size_t features, const char* what) {
  if (info.ndim != 2)
    throw py::value_error(std::string(what) + " must be 2-dimensional (samples, features), got " +
                          std::to_string(info.ndim) + " dimensions");
  if (static_cast<std::size_t>(info.shape[1]) != features)
    throw py::value_error(std::string(what) + " has " + std::to_string(info.shape[1]) +
                          " features per sample, but the network expects " +
                          std::to_string(features));
  return static_cast<std::size_t>(info.shape[0]);
}

template <class T>
Targets<T> make_targets(const std::optional<CArray<T>>& values,
                        const std::optional<py::array_t<std::int64_t, py::array::c_style |
                                                                          py::array::forcecast>>& labels,
                        const std::optional<CArray<T>>& weights, std::size_t n, std::size_t C) {
  Targets<T> t;
  if (labels) {
    if (labels->ndim() != 1 || static_cast<std::size_t>(labels->shape(0)) != n)
      throw py::value_error("labels must have shape (" + std::to_string(n) + ",)");
    t.labels = labels->data();
  } else if (values) {
    if (values->ndim() != 2 || static_cast<std::size_t>(values->shape(0)) != n ||
        static_cast<std::size_t>(values->shape(1)) != C)
      throw py::value_error("targets must have shape (" + std::to_string(n) + ", " +
                            std::to_string(C) + ")");
    t.values = values->data();
  } else {
    throw py::value_error("targets are missing: pass values or labels");
  }
  if (weights) {
    if (weights->ndim() != 1 || static_cast<std::size_t>(weights->shape(0)) != n)
      throw py::value_error("sample weights must have shape (" + std::to_string(n) + ",)");
    t.weights = weights->data();
  }
  return t;
}

template Targets<float> make_targets<float>(
    const std::optional<CArray<float>>&,
    const std::optional<py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>>&,
    const std::optional<CArray<float>>&, std::size_t, std::size_t);
template Targets<double> make_targets<double>(
    const std::optional<CArray<double>>&,
    const std::optional<py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>>&,
    const std::optional<CArray<double>>&, std::size_t, std::size_t);

}  // namespace bpx::python

PYBIND11_MODULE(_core, m) {
  m.doc() = "backpropx's C++ core (private; use the backpropx package)";
  bpx::python::register_runtime(m);
  bpx::python::register_network(m);
  bpx::python::register_optimizers(m);
  bpx::python::register_trainer(m);
}
