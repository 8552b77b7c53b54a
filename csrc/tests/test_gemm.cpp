// GEMM correctness: every instruction-set path, float and double, the four
// transpose combinations and awkward shapes against bpx::gemm_naive, plus
// bit-identical results for 1 and 2 threads. Returns nonzero on failure.
//
// Tolerance: both the path and the reference sum K products in floating
// point; each carries an error of at most about K * eps * sum_k |a_ik b_kj|
// (plus eps * |beta c|), so their difference is bounded by
//   tol_ij = (2 K + 4) * eps * (|alpha| sum_k |a_ik b_kj| + |beta c_ij|).
// The check is tested too: a result missing one product must fail it.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "backpropx/gemm.hpp"
#include "backpropx/parallel.hpp"
#include "kernels/kernels.hpp"

namespace {

using bpx::Trans;
using std::size_t;

int g_failures = 0;
int g_checks = 0;

void fail(const std::string& what) {
  if (++g_failures <= 20) std::fprintf(stderr, "FAIL: %s\n", what.c_str());
}

struct Shape {
  size_t M, N, K;
};

template <class T>
const char* type_name() {
  return sizeof(T) == 4 ? "float" : "double";
}

template <class T>
struct Problem {
  size_t M, N, K, lda, ldb, ldc;
  Trans ta, tb;
  T alpha, beta;
  std::vector<T> A, B, C0;

  // op(A) element (i, k), op(B) element (k, j).
  T a(size_t i, size_t k) const { return ta == Trans::N ? A[i * lda + k] : A[k * lda + i]; }
  T b(size_t k, size_t j) const { return tb == Trans::N ? B[k * ldb + j] : B[j * ldb + k]; }
};

template <class T>
Problem<T> make_problem(Shape s, Trans ta, Trans tb, T alpha, T beta, size_t pad, bool nan_c,
                        std::mt19937& rng) {
  Problem<T> p{s.M, s.N, s.K, 0, 0, 0, ta, tb, alpha, beta, {}, {}, {}};
  const size_t a_rows = ta == Trans::N ? s.M : s.K, a_cols = ta == Trans::N ? s.K : s.M;
  const size_t b_rows = tb == Trans::N ? s.K : s.N, b_cols = tb == Trans::N ? s.N : s.K;
  p.lda = a_cols + pad;
  p.ldb = b_cols + pad;
  p.ldc = s.N + pad;
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  // Exactly as much as a BLAS caller must provide: the last row ends at its
  // last element, so the sanitizer build catches any read past it.
  auto extent = [](size_t rows, size_t cols, size_t ld) {
    return rows == 0 || cols == 0 ? size_t(1) : (rows - 1) * ld + cols;
  };
  p.A.resize(extent(a_rows, a_cols, p.lda));
  p.B.resize(extent(b_rows, b_cols, p.ldb));
  p.C0.resize(extent(s.M, s.N, p.ldc));
  for (auto& x : p.A) x = static_cast<T>(u(rng));
  for (auto& x : p.B) x = static_cast<T>(u(rng));
  for (auto& x : p.C0) x = nan_c ? std::numeric_limits<T>::quiet_NaN() : static_cast<T>(u(rng));
  return p;
}

// Compares C against the naive product; returns the number of bad elements.
// Also checks that C's padding (columns N .. ldc) was left untouched.
template <class T>
size_t compare(const Problem<T>& p, const std::vector<T>& C, const std::vector<T>& ref) {
  const double eps = std::numeric_limits<T>::epsilon();
  size_t bad = 0;
  for (size_t i = 0; i < p.M; ++i) {
    for (size_t j = 0; j < p.ldc && i * p.ldc + j < C.size(); ++j) {
      const size_t at = i * p.ldc + j;
      if (j >= p.N) {
        if (std::memcmp(&C[at], &p.C0[at], sizeof(T)) != 0) ++bad;
        continue;
      }
      double mag = 0;
      for (size_t k = 0; k < p.K; ++k) mag += std::fabs(double(p.a(i, k)) * double(p.b(k, j)));
      mag *= std::fabs(double(p.alpha));
      if (p.beta != T(0)) mag += std::fabs(double(p.beta) * double(p.C0[at]));
      const double tol = (2.0 * double(p.K) + 4.0) * eps * mag;
      const double err = std::fabs(double(C[at]) - double(ref[at]));
      if (!(err <= tol)) ++bad;  // catches NaN too
    }
  }
  return bad;
}

template <class T>
void check_case(const char* isa, Shape s, Trans ta, Trans tb, T alpha, T beta, size_t pad,
                std::mt19937& rng) {
  const bool nan_c = beta == T(0);
  Problem<T> p = make_problem<T>(s, ta, tb, alpha, beta, pad, nan_c, rng);
  std::vector<T> C = p.C0, ref = p.C0;
  bpx::gemm<T>(ta, tb, s.M, s.N, s.K, alpha, p.A.data(), p.lda, p.B.data(), p.ldb, beta, C.data(),
               p.ldc);
  bpx::gemm_naive<T>(ta, tb, s.M, s.N, s.K, alpha, p.A.data(), p.lda, p.B.data(), p.ldb, beta,
                     ref.data(), p.ldc);
  ++g_checks;
  const size_t bad = compare(p, C, ref);
  if (bad != 0) {
    char msg[256];
    std::snprintf(msg, sizeof msg, "%s %s ta=%d tb=%d M=%zu N=%zu K=%zu alpha=%g beta=%g pad=%zu: %zu bad",
                  isa, type_name<T>(), int(ta == Trans::T), int(tb == Trans::T), s.M, s.N, s.K,
                  double(alpha), double(beta), pad, bad);
    fail(msg);
  }
}

const Shape kShapes[] = {
    {1, 1, 1},     {7, 13, 17},  {2, 3, 5},      {11, 29, 31},  {500, 3, 20},  {3, 500, 20},
    {1, 300, 64},  {300, 1, 64}, {13, 35, 1},    {12, 32, 256}, {24, 64, 257}, {25, 65, 255},
    {49, 97, 33},  {128, 10, 256}, {10, 256, 128}, {128, 256, 10}, {300, 200, 150},
    {37, 45, 1300}, {5, 2100, 9}, {97, 2060, 11}, {33, 16, 37}, {29, 17, 45}, {70, 5, 1030},
};

template <class T>
void check_path(const char* isa, std::mt19937& rng) {
  const Trans ts[] = {Trans::N, Trans::T};
  for (Trans ta : ts)
    for (Trans tb : ts)
      for (const Shape& s : kShapes) {
        check_case<T>(isa, s, ta, tb, T(1), T(0), 0, rng);        // overwrite, NaN in C
        check_case<T>(isa, s, ta, tb, T(1), T(1), 3, rng);        // accumulate, padded
        check_case<T>(isa, s, ta, tb, T(-0.75), T(0.5), 1, rng);  // general alpha, beta
      }
  // K == 0: C = beta * C; beta == 0 must overwrite NaN with zeros.
  for (T beta : {T(0), T(1), T(2)}) {
    Problem<T> p = make_problem<T>({5, 7, 0}, Trans::N, Trans::N, T(1), beta, 2, beta == T(0), rng);
    std::vector<T> C = p.C0;
    bpx::gemm<T>(Trans::N, Trans::N, 5, 7, 0, T(1), p.A.data(), p.lda, p.B.data(), p.ldb, beta,
                 C.data(), p.ldc);
    ++g_checks;
    for (size_t i = 0; i < 5; ++i)
      for (size_t j = 0; j < 7; ++j) {
        const T want = beta == T(0) ? T(0) : beta * p.C0[i * p.ldc + j];
        if (!(C[i * p.ldc + j] == want)) {
          fail(std::string(isa) + " " + type_name<T>() + " K=0 beta=" + std::to_string(double(beta)));
          i = 5;
          break;
        }
      }
  }
}

// The same product with 1 and 2 threads must give the same bits.
template <class T>
void check_threads(const char* isa, std::mt19937& rng) {
  const Shape shapes[] = {{300, 200, 150}, {256, 256, 1100}, {130, 2100, 40}, {1030, 70, 64},
                          {4000, 10, 64}};
  const Trans ts[] = {Trans::N, Trans::T};
  const int saved = bpx::get_num_threads();
  for (const Shape& s : shapes)
    for (Trans ta : ts)
      for (Trans tb : ts) {
        Problem<T> p = make_problem<T>(s, ta, tb, T(1), T(1), 1, false, rng);
        std::vector<T> c1 = p.C0, c2 = p.C0;
        bpx::set_num_threads(1);
        bpx::gemm<T>(ta, tb, s.M, s.N, s.K, T(1), p.A.data(), p.lda, p.B.data(), p.ldb, T(1),
                     c1.data(), p.ldc);
        bpx::set_num_threads(2);
        bpx::gemm<T>(ta, tb, s.M, s.N, s.K, T(1), p.A.data(), p.lda, p.B.data(), p.ldb, T(1),
                     c2.data(), p.ldc);
        ++g_checks;
        if (std::memcmp(c1.data(), c2.data(), c1.size() * sizeof(T)) != 0) {
          char msg[160];
          std::snprintf(msg, sizeof msg, "%s %s ta=%d tb=%d %zux%zux%zu: 1 and 2 threads differ", isa,
                        type_name<T>(), int(ta == Trans::T), int(tb == Trans::T), s.M, s.N, s.K);
          fail(msg);
        }
      }
  bpx::set_num_threads(saved);
}

// Tests the tester: a product that drops one term must fail the tolerance.
bool tolerance_catches_a_dropped_term() {
  std::mt19937 rng(7);
  Problem<float> p = make_problem<float>({9, 11, 300}, Trans::N, Trans::N, 1.0f, 0.0f, 0, true, rng);
  p.A[4 * p.lda + 150] = 1.0f;  // make the dropped product a(4, 150) b(150, 5) = 1
  p.B[150 * p.ldb + 5] = 1.0f;
  std::vector<float> ref = p.C0, wrong = p.C0;
  bpx::gemm_naive<float>(Trans::N, Trans::N, 9, 11, 300, 1.0f, p.A.data(), p.lda, p.B.data(),
                         p.ldb, 0.0f, ref.data(), p.ldc);
  // Drop k = 150 from C(4, 5).
  bpx::gemm_naive<float>(Trans::N, Trans::N, 9, 11, 300, 1.0f, p.A.data(), p.lda, p.B.data(),
                         p.ldb, 0.0f, wrong.data(), p.ldc);
  wrong[4 * p.ldc + 5] -= p.a(4, 150) * p.b(150, 5);
  return compare(p, ref, ref) == 0 && compare(p, wrong, ref) == 1;
}

}  // namespace

int main() {
  using bpx::kernels::Isa;
  if (!tolerance_catches_a_dropped_term()) fail("the tolerance does not catch a dropped product");
  std::mt19937 rng(12345);
  for (Isa isa : {Isa::generic, Isa::avx2, Isa::avx512}) {
    const char* name = bpx::kernels::isa_name(isa);
    if (!bpx::kernels::isa_supported(isa)) {
      std::printf("skip %s: not supported by this CPU\n", name);
      continue;
    }
    bpx::kernels::set_active_isa(isa);
    const int before = g_failures;
    check_path<float>(name, rng);
    check_path<double>(name, rng);
    check_threads<float>(name, rng);
    check_threads<double>(name, rng);
    std::printf("%s: %s\n", name, g_failures == before ? "ok" : "FAILED");
  }
  std::printf("%d checks, %d failures\n", g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}
