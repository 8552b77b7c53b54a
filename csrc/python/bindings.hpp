// Shared pieces of the pybind11 module. Bindings convert and check arrays,
// release the GIL around C++ work and hold no math.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <shared_mutex>
#include <string>

#include "backpropx/network.hpp"

namespace bpx::python {

namespace py = pybind11;

template <class T>
using CArray = py::array_t<T, py::array::c_style | py::array::forcecast>;

// Suffix of the per-dtype class names: Network_float32, Network_float64.
template <class T>
const char* dtype_suffix();

// A Network plus the lock that lets many threads predict at once while
// training or weight assignment excludes everyone else.
template <class T>
struct NetworkHolder {
  std::unique_ptr<Network<T>> net;
  mutable std::shared_mutex mutex;
};

// Checks X is (n, features) and returns n; throws ValueError naming `what`.
std::size_t check_rows(const py::buffer_info& info, std::size_t features, const char* what);

// Targets from the optional Python arrays: values (n, C) or labels (n,), and
// optional sample weights (n,).
template <class T>
Targets<T> make_targets(const std::optional<CArray<T>>& values,
                        const std::optional<py::array_t<std::int64_t, py::array::c_style |
                                                                          py::array::forcecast>>& labels,
                        const std::optional<CArray<T>>& weights, std::size_t n, std::size_t C);

void register_runtime(py::module_& m);
void register_network(py::module_& m);
void register_optimizers(py::module_& m);
void register_trainer(py::module_& m);

}  // namespace bpx::python
