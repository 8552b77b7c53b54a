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

std::size_t check_samples(const py::buffer_info& info, const Shape& shape, const char* what) {
  const std::string expected = "(n, " + [&] {
    std::string dims;
    for (std::size_t d : shape) dims += (dims.empty() ? "" : ", ") + std::to_string(d);
    return dims;
  }() + ")";
  bool ok = static_cast<std::size_t>(info.ndim) == shape.size() + 1;
  for (std::size_t i = 0; ok && i < shape.size(); ++i) ok = static_cast<std::size_t>(info.shape[i + 1]) == shape[i];
  if (!ok) {
    std::string got;
    for (py::ssize_t d : info.shape) got += (got.empty() ? "" : ", ") + std::to_string(d);
    throw py::value_error(std::string(what) + " must have shape " + expected + ", got (" + got + ")");
  }
  return static_cast<std::size_t>(info.shape[0]);
}

template <class T>
Targets<T> make_targets(const std::optional<CArray<T>>& values,
                        const std::optional<py::array_t<std::int64_t, py::array::c_style |
                                                                          py::array::forcecast>>& labels,
                        const std::optional<CArray<T>>& weights, std::size_t n, std::size_t out_size,
                        std::size_t rows_per_sample) {
  Targets<T> t;
  t.group = rows_per_sample;
  if (labels) {
    if (labels->size() < 0 || static_cast<std::size_t>(labels->size()) != n * rows_per_sample)
      throw py::value_error("labels must hold " + std::to_string(n * rows_per_sample) + " values (" +
                            std::to_string(rows_per_sample) + " per sample)");
    t.labels = labels->data();
  } else if (values) {
    if (values->ndim() < 1 || static_cast<std::size_t>(values->shape(0)) != n ||
        static_cast<std::size_t>(values->size()) != n * out_size)
      throw py::value_error("targets must have " + std::to_string(n) + " samples of " +
                            std::to_string(out_size) + " values");
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
    const std::optional<CArray<float>>&, std::size_t, std::size_t, std::size_t);
template Targets<double> make_targets<double>(
    const std::optional<CArray<double>>&,
    const std::optional<py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>>&,
    const std::optional<CArray<double>>&, std::size_t, std::size_t, std::size_t);

}  // namespace bpx::python

PYBIND11_MODULE(_core, m) {
  m.doc() = "backpropx's C++ core (private; use the backpropx package)";
  bpx::python::register_runtime(m);
  bpx::python::register_network(m);
  bpx::python::register_optimizers(m);
  bpx::python::register_trainer(m);
  bpx::python::register_sparse(m);
  bpx::python::register_objective(m);
}
