// Sparse input rows (CSR) for a Dense first layer, and the two products it
// needs, so a (n, IN) matrix of TF-IDF-like features is never densified:
//   forward      Z   = X . W^T     X (N, IN) CSR, W (OUT, IN), Z (N, OUT)
//   weight grad  dW += dZ^T . X    dZ (N, OUT), dW (OUT, IN)
// Work is split over blocks of output units; each element of Z and dW is
// summed by one thread in the order the rows store their entries, so the
// results are the same bits for any number of threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace bpx {

// A view of CSR rows: row r holds entries [indptr[r], indptr[r + 1]) of
// indices/data. indptr[0] need not be 0, so a block of rows is a view too.
// Duplicate column indices add up (scipy's convention); order is free.
template <class T>
struct CsrMatrix {
  std::size_t rows = 0, cols = 0;
  const std::int64_t* indptr = nullptr;  // (rows + 1,)
  const std::int32_t* indices = nullptr;
  const T* data = nullptr;

  // Rows [start, start + m) as a view.
  CsrMatrix block(std::size_t start, std::size_t m) const { return {m, cols, indptr + start, indices, data}; }
  std::size_t nnz() const { return rows == 0 ? 0 : static_cast<std::size_t>(indptr[rows] - indptr[0]); }
};

// Throws std::invalid_argument naming the first defect: indptr not starting
// at 0, decreasing, or beyond nnz_stored; a column index outside [0, cols);
// a value that is NaN or infinite.
template <class T>
void check_csr(const CsrMatrix<T>& x, std::size_t nnz_stored);

// The rows a pass reads: dense (N, IN) row-major, or CSR. Dense callers pass
// a pointer and convert implicitly.
template <class T>
struct Input {
  Input(const T* dense_rows) : dense(dense_rows) {}  // NOLINT(google-explicit-constructor)
  Input(const CsrMatrix<T>& csr_rows) : csr(csr_rows), sparse(true) {}  // NOLINT

  // Rows [start, start + m) of an input with `width` features per row.
  Input block(std::size_t start, std::size_t m, std::size_t width) const {
    return sparse ? Input(csr.block(start, m)) : Input(dense + start * width);
  }

  const T* dense = nullptr;
  CsrMatrix<T> csr{};
  bool sparse = false;
};

// z (N, OUT) = x (N, IN) . weight (OUT, IN)^T, z assigned.
template <class T>
void csr_matmul_nt(T* z, const CsrMatrix<T>& x, const T* weight, std::size_t OUT);

// dweight (OUT, IN) += dz (N, OUT)^T . x (N, IN).
template <class T>
void csr_weight_grad(T* dweight, const T* dz, const CsrMatrix<T>& x, std::size_t OUT);

// Gathers rows order[0..m) of x into CSR buffers (resized to fit) and returns
// the view of the gathered block: the sparse counterpart of a batch memcpy.
template <class T>
CsrMatrix<T> gather_csr_rows(const CsrMatrix<T>& x, const std::uint64_t* order, std::size_t m,
                             std::vector<std::int64_t>& indptr, std::vector<std::int32_t>& indices,
                             std::vector<T>& data);

// The largest number of stored entries any `m` rows of x hold together: sizes
// a batch buffer once, before shuffled batches are gathered into it.
template <class T>
std::size_t max_nnz_of_rows(const CsrMatrix<T>& x, std::size_t m);

}  // namespace bpx
