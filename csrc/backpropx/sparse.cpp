#include "backpropx/sparse.hpp"

#include <algorithm>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <type_traits>
#include <string>

#include "backpropx/common.hpp"
#include "kernels/gemm_tasks.hpp"

namespace bpx {

namespace {

// Output units per task: a task sweeps kUnits rows of W (OUT, IN), or of dW,
// side by side (8 streams the prefetchers follow; 4 and 16 measured slower).
constexpr std::size_t kUnits = 8;

// Runs body(block) for every block of kUnits output units. Threads are the
// GEMM's (kernels::gemm_threads): none for small products, and none for a
// while after helpers kept the caller waiting (another process on a core).
template <class Body>
void for_unit_blocks(std::size_t OUT, std::size_t multiply_adds, Body&& body) {
  const std::size_t blocks = (OUT + kUnits - 1) / kUnits;
  kernels::run_tasks(kernels::gemm_threads(static_cast<double>(multiply_adds)), blocks, body);
}

// The entries of a block of rows grouped by column, columns ascending and
// each column's entries in row order (a CSC copy). Visiting W's columns in
// ascending order turns what would be a random gather per entry (a cache
// miss each: rows of W are IN wide) into a forward sweep along each row of
// W, which the hardware prefetches; rows of W and dW are read once per task.
template <class T>
struct ColumnOrder {
  std::vector<std::int32_t> cols;  // the non-empty columns, ascending
  std::vector<std::size_t> start;  // cols.size() + 1 offsets into rows / vals
  std::vector<std::uint32_t> rows;
  std::vector<T> vals;
  std::vector<std::uint32_t> count;  // scratch of the counting sort

  void build(const CsrMatrix<T>& x) {
    const std::size_t nnz = x.nnz(), base = static_cast<std::size_t>(x.indptr[0]);
    require(x.rows < (std::size_t{1} << 32) && nnz < (std::size_t{1} << 32),
            "a sparse block of rows is limited to 2^32 rows and entries");
    rows.resize(nnz);
    vals.resize(nnz);
    cols.clear();
    start.clear();
    // Counting sort when the column range is small next to the entries, else
    // a sort of (column, position) keys; both keep each column's row order.
    if (x.cols <= 16 * nnz) {
      count.assign(x.cols + 1, 0);
      for (std::size_t p = 0; p < nnz; ++p) ++count[static_cast<std::size_t>(x.indices[base + p]) + 1];
      for (std::size_t j = 0; j < x.cols; ++j) {
        if (count[j + 1] > 0) cols.push_back(static_cast<std::int32_t>(j));
        count[j + 1] += count[j];
      }
      for (std::int32_t j : cols) start.push_back(count[static_cast<std::size_t>(j)]);
      start.push_back(nnz);
      for (std::size_t r = 0; r < x.rows; ++r)
        for (std::size_t p = static_cast<std::size_t>(x.indptr[r]) - base; p < static_cast<std::size_t>(x.indptr[r + 1]) - base; ++p) {
          const std::uint32_t at = count[static_cast<std::size_t>(x.indices[base + p])]++;
          rows[at] = static_cast<std::uint32_t>(r);
          vals[at] = x.data[base + p];
        }
    } else {
      std::vector<std::uint64_t> keys(nnz);
      std::vector<std::uint32_t> row_of(nnz);
      for (std::size_t r = 0; r < x.rows; ++r)
        for (std::size_t p = static_cast<std::size_t>(x.indptr[r]) - base; p < static_cast<std::size_t>(x.indptr[r + 1]) - base; ++p) {
          keys[p] = (static_cast<std::uint64_t>(x.indices[base + p]) << 32) | p;
          row_of[p] = static_cast<std::uint32_t>(r);
        }
      std::sort(keys.begin(), keys.end());
      for (std::size_t q = 0; q < nnz; ++q) {
        const std::size_t p = keys[q] & 0xffffffffu;
        const auto j = static_cast<std::int32_t>(keys[q] >> 32);
        if (cols.empty() || cols.back() != j) {
          cols.push_back(j);
          start.push_back(q);
        }
        rows[q] = row_of[p];
        vals[q] = x.data[base + p];
      }
      start.push_back(nnz);
    }
  }
};

// One per thread and scalar type: concurrent predicts never share it.
template <class T>
ColumnOrder<T>& column_order(const CsrMatrix<T>& x) {
  thread_local ColumnOrder<T> order;
  order.build(x);
  return order;
}

}  // namespace

template <class T>
void check_csr(const CsrMatrix<T>& x, std::size_t nnz_stored) {
  if (x.indptr[0] != 0)
    throw std::invalid_argument("sparse X: indptr[0] must be 0, got " + std::to_string(x.indptr[0]));
  for (std::size_t r = 0; r < x.rows; ++r)
    if (x.indptr[r + 1] < x.indptr[r])
      throw std::invalid_argument("sparse X: indptr decreases at row " + std::to_string(r));
  const std::size_t nnz = x.nnz();
  if (nnz > nnz_stored)
    throw std::invalid_argument("sparse X: indptr names " + std::to_string(nnz) + " entries but only " +
                                std::to_string(nnz_stored) + " are stored");
  for (std::size_t p = 0; p < nnz; ++p)
    if (x.indices[p] < 0 || static_cast<std::size_t>(x.indices[p]) >= x.cols)
      throw std::invalid_argument("sparse X: column index " + std::to_string(x.indices[p]) +
                                  " is outside [0, " + std::to_string(x.cols) + ")");
  if (!all_finite(x.data, nnz)) {
    std::size_t p = 0;
    while (all_finite(x.data + p, 1)) ++p;
    std::size_t r = 0;
    while (static_cast<std::size_t>(x.indptr[r + 1]) <= p) ++r;
    throw std::invalid_argument("sparse X contains a non-finite value (" + std::to_string(x.data[p]) +
                                ") at index (" + std::to_string(r) + ", " + std::to_string(x.indices[p]) + ")");
  }
}

namespace {

// z[:, o0 + u] (u < units) for one block of output units; w is W's row o0.
// Units is a compile-time kUnits for full blocks, so wj stays in registers.
template <class T, class Units>
void forward_block(T* z, const ColumnOrder<T>& order, const T* w, std::size_t IN, std::size_t OUT,
                   std::size_t o0, Units units) {
  // z[r, o] = sum over the row's entries, in ascending column order
  for (std::size_t c = 0; c < order.cols.size(); ++c) {
    const std::size_t j = static_cast<std::size_t>(order.cols[c]);
    T wj[kUnits];
    for (std::size_t u = 0; u < units; ++u) wj[u] = w[u * IN + j];
    for (std::size_t p = order.start[c]; p < order.start[c + 1]; ++p) {
      T* zr = z + order.rows[p] * OUT + o0;
      const T v = order.vals[p];
      for (std::size_t u = 0; u < units; ++u) zr[u] += v * wj[u];
    }
  }
}

// dW[o0 + u, :] += ... for one block of output units; dw is dW's row o0.
template <class T, class Units>
void weight_grad_block(T* dw, const T* dz, const ColumnOrder<T>& order, std::size_t IN, std::size_t OUT,
                       std::size_t o0, Units units) {
  // dW[o, j] += sum over column j's entries (row order) of x[r, j] dz[r, o]
  for (std::size_t c = 0; c < order.cols.size(); ++c) {
    T acc[kUnits] = {};
    for (std::size_t p = order.start[c]; p < order.start[c + 1]; ++p) {
      const T* dzr = dz + order.rows[p] * OUT + o0;
      const T v = order.vals[p];
      for (std::size_t u = 0; u < units; ++u) acc[u] += v * dzr[u];
    }
    const std::size_t j = static_cast<std::size_t>(order.cols[c]);
    for (std::size_t u = 0; u < units; ++u) dw[u * IN + j] += acc[u];
  }
}

using FullBlock = std::integral_constant<std::size_t, kUnits>;

}  // namespace

template <class T>
void csr_matmul_nt(T* z, const CsrMatrix<T>& x, const T* weight, std::size_t OUT) {
  // x is (N, IN) CSR, weight is (OUT, IN), z is (N, OUT)
  const std::size_t N = x.rows, IN = x.cols;
  const ColumnOrder<T>& order = column_order(x);
  for_unit_blocks(OUT, x.nnz() * OUT, [&](std::size_t b) {
    const std::size_t o0 = b * kUnits, units = std::min(kUnits, OUT - o0);
    for (std::size_t r = 0; r < N; ++r) std::fill(z + r * OUT + o0, z + r * OUT + o0 + units, T(0));
    if (units == kUnits) forward_block(z, order, weight + o0 * IN, IN, OUT, o0, FullBlock{});
    else forward_block(z, order, weight + o0 * IN, IN, OUT, o0, units);
  });
}

template <class T>
void csr_weight_grad(T* dweight, const T* dz, const CsrMatrix<T>& x, std::size_t OUT) {
  // forward: z = x W^T;  dW (OUT, IN) += dz^T (OUT, N) . x (N, IN)
  const std::size_t IN = x.cols;
  const ColumnOrder<T>& order = column_order(x);
  for_unit_blocks(OUT, x.nnz() * OUT, [&](std::size_t b) {
    const std::size_t o0 = b * kUnits, units = std::min(kUnits, OUT - o0);
    if (units == kUnits) weight_grad_block(dweight + o0 * IN, dz, order, IN, OUT, o0, FullBlock{});
    else weight_grad_block(dweight + o0 * IN, dz, order, IN, OUT, o0, units);
  });
}

template <class T>
CsrMatrix<T> gather_csr_rows(const CsrMatrix<T>& x, const std::uint64_t* order, std::size_t m,
                             std::vector<std::int64_t>& indptr, std::vector<std::int32_t>& indices,
                             std::vector<T>& data) {
  indptr.resize(m + 1);
  indptr[0] = 0;
  for (std::size_t r = 0; r < m; ++r)
    indptr[r + 1] = indptr[r] + (x.indptr[order[r] + 1] - x.indptr[order[r]]);
  const std::size_t total = static_cast<std::size_t>(indptr[m]);
  if (indices.size() < total) {
    indices.resize(total);
    data.resize(total);
  }
  for (std::size_t r = 0; r < m; ++r) {
    const std::int64_t from = x.indptr[order[r]];
    const std::size_t len = static_cast<std::size_t>(indptr[r + 1] - indptr[r]);
    std::memcpy(indices.data() + indptr[r], x.indices + from, len * sizeof(std::int32_t));
    std::memcpy(data.data() + indptr[r], x.data + from, len * sizeof(T));
  }
  return {m, x.cols, indptr.data(), indices.data(), data.data()};
}

template <class T>
std::size_t max_nnz_of_rows(const CsrMatrix<T>& x, std::size_t m) {
  std::vector<std::size_t> lengths(x.rows);
  for (std::size_t r = 0; r < x.rows; ++r) lengths[r] = static_cast<std::size_t>(x.indptr[r + 1] - x.indptr[r]);
  m = std::min(m, x.rows);
  std::nth_element(lengths.begin(), lengths.begin() + static_cast<std::ptrdiff_t>(m), lengths.end(),
                   std::greater<>());
  std::size_t total = 0;
  for (std::size_t r = 0; r < m; ++r) total += lengths[r];
  return total;
}

#define BPX_SPARSE_INSTANTIATE(T)                                                                  \
  template void check_csr<T>(const CsrMatrix<T>&, std::size_t);                                    \
  template void csr_matmul_nt<T>(T*, const CsrMatrix<T>&, const T*, std::size_t);                  \
  template void csr_weight_grad<T>(T*, const T*, const CsrMatrix<T>&, std::size_t);                \
  template CsrMatrix<T> gather_csr_rows<T>(const CsrMatrix<T>&, const std::uint64_t*, std::size_t, \
                                           std::vector<std::int64_t>&, std::vector<std::int32_t>&, \
                                           std::vector<T>&);                                       \
  template std::size_t max_nnz_of_rows<T>(const CsrMatrix<T>&, std::size_t);
BPX_SPARSE_INSTANTIATE(float)
BPX_SPARSE_INSTANTIATE(double)
#undef BPX_SPARSE_INSTANTIATE

}  // namespace bpx
