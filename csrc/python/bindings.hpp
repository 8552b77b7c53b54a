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

// The state of a manual forward(training=True) awaiting its backward: the
// workspace with what backward needs, and a copy of the input (the caller's
// array may change or go away in between).
template <class T>
struct ManualPass {
  Workspace<T> ws;
  std::vector<T> x;
  std::vector<std::int64_t> lengths;  // the forward's, for its backward (empty: none)
  std::size_t n = 0;
  bool pending = false;  // a training forward whose backward has not run yet
  std::vector<T> before_step;  // apply_update's copy for undoing an unbounded step, kept between steps
  std::vector<T> grads_before;  // backward's, so an overflowing backward changes nothing
};

// A Network plus the lock that lets many threads predict at once while
// training or weight assignment excludes everyone else, and the state of
// manual mode (its own seeded Rng drives dropout there).
template <class T>
struct NetworkHolder {
  std::unique_ptr<Network<T>> net;
  mutable std::shared_mutex mutex;
  ManualPass<T> manual;
  Rng rng{0};
};

// Checks X is (n, *shape) and returns n; throws ValueError naming `what`.
std::size_t check_samples(const py::buffer_info& info, const Shape& shape, const char* what);

// Sparse rows from Python (backpropx._sparse builds them from scipy's CSR
// arrays): checked once when built, alive as long as the holder. A slice of
// rows shares the arrays.
template <class T>
struct CsrHolder {
  py::array_t<std::int64_t> indptr;  // (all rows + 1,)
  py::array_t<std::int32_t> indices;
  py::array_t<T> data;
  std::size_t start = 0, rows = 0, cols = 0;  // this holder's rows: [start, start + rows)
  CsrMatrix<T> view() const {
    return CsrMatrix<T>{rows, cols, indptr.data(), indices.data(), data.data()}.block(start, rows);
  }
};

// The rows of X as the core reads them, and their count: a dense (n,
// *input_shape) array, or CSR rows when the first layer reads them.
// ValueError naming `what` otherwise.
template <class T>
std::pair<Input<T>, std::size_t> as_input(const CArray<T>& X, const Network<T>& net, const char* what) {
  return {Input<T>(X.data()), check_samples(X.request(), net.input_shape(), what)};
}
template <class T>
std::pair<Input<T>, std::size_t> as_input(const CsrHolder<T>& X, const Network<T>& net, const char* what) {
  if (!net.layer(0).accepts_sparse())
    throw py::value_error(std::string(what) + " is sparse, which needs a Dense first layer over 1-d samples; the "
                          "first layer is " + net.layer(0).kind() + " with input shape " +
                          shape_str(net.input_shape()));
  if (X.cols != net.in_features())
    throw py::value_error(std::string(what) + " has " + std::to_string(X.cols) +
                          " features per sample, but the network expects " + std::to_string(net.in_features()));
  return {Input<T>(X.view()), X.rows};
}

// Targets from the optional Python arrays: values (n samples of out_size
// values) or labels (rows_per_sample per sample), and optional sample
// weights (n,).
template <class T>
Targets<T> make_targets(const std::optional<CArray<T>>& values,
                        const std::optional<py::array_t<std::int64_t, py::array::c_style |
                                                                          py::array::forcecast>>& labels,
                        const std::optional<CArray<T>>& weights, std::size_t n, std::size_t out_size,
                        std::size_t rows_per_sample);

using IntArray = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;

// The data of optional per-sample sequence lengths, checked against the
// network (shape (n,), values in [1, steps]), or null.
template <class T>
const std::int64_t* checked_lengths(const Network<T>& net, const std::optional<IntArray>& lengths,
                                    std::size_t n);

// Checks dense input data for a first layer that reads data (Embedding's ids).
template <class T>
void check_data(const Network<T>& net, const Input<T>& x, std::size_t n) {
  if (!x.sparse) net.check_input(x.dense, n);
}

void register_runtime(py::module_& m);
void register_network(py::module_& m);
void register_optimizers(py::module_& m);
void register_trainer(py::module_& m);
void register_sparse(py::module_& m);
void register_objective(py::module_& m);

}  // namespace bpx::python
