#include "python/bindings.hpp"

namespace bpx::python {

namespace {

using Indptr = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;
using Indices = py::array_t<std::int32_t, py::array::c_style | py::array::forcecast>;

template <class T>
void bind_csr(py::module_& m) {
  using Holder = CsrHolder<T>;
  const std::string name = std::string("Csr_") + dtype_suffix<T>();
  py::class_<Holder>(m, name.c_str())
      .def(py::init([](const Indptr& indptr, const Indices& indices, const CArray<T>& data, std::size_t cols) {
             if (indptr.ndim() != 1 || indptr.shape(0) < 1 || indices.ndim() != 1 || data.ndim() != 1 ||
                 indices.shape(0) != data.shape(0))
               throw py::value_error("sparse X: indptr (rows + 1,), indices (nnz,) and data (nnz,) expected");
             auto h = std::make_unique<Holder>();
             h->indptr = indptr;
             h->indices = indices;
             h->data = data;
             h->rows = static_cast<std::size_t>(indptr.shape(0) - 1);
             h->cols = cols;
             const CsrMatrix<T> view = h->view();
             const std::size_t stored = static_cast<std::size_t>(data.shape(0));
             {
               py::gil_scoped_release release;
               check_csr(view, stored);
             }
             return h;
           }),
           py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("cols"),
           "CSR rows (scipy's arrays: indptr int64, indices int32, data), checked: indptr starts at 0 "
           "and never decreases, column indices lie in [0, cols), values are finite")
      .def_property_readonly("shape", [](const Holder& h) { return py::make_tuple(h.rows, h.cols); })
      .def_property_readonly("nnz", [](const Holder& h) { return h.view().nnz(); })
      .def("__len__", [](const Holder& h) { return h.rows; })
      .def("__getitem__", [](const Holder& h, const py::slice& rows) {
        py::ssize_t start = 0, stop = 0, step = 0, length = 0;
        if (!rows.compute(static_cast<py::ssize_t>(h.rows), &start, &stop, &step, &length))
          throw py::error_already_set();
        if (step != 1) throw py::value_error("sparse rows can only be sliced with step 1");
        Holder out = h;
        out.start = h.start + static_cast<std::size_t>(start);
        out.rows = static_cast<std::size_t>(length);
        return out;
      }, py::arg("rows"), "A block of rows sharing this holder's arrays (no copy)");
}

}  // namespace

void register_sparse(py::module_& m) {
  bind_csr<float>(m);
  bind_csr<double>(m);
}

}  // namespace bpx::python
