#include "backpropx/activations.hpp"
#include "backpropx/gemm.hpp"
#include "backpropx/init.hpp"
#include "backpropx/losses.hpp"
#include "backpropx/optimizers.hpp"
#include "backpropx/parallel.hpp"
#include "kernels/kernels.hpp"
#include "backpropx/layers/registry.hpp"
#include "python/bindings.hpp"

namespace bpx::python {

namespace {
std::string compiler() {
#if defined(__clang__)
  return std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  return "gcc " + std::to_string(__GNUC__) + "." + std::to_string(__GNUC_MINOR__) + "." +
         std::to_string(__GNUC_PATCHLEVEL__);
#else
  return "unknown";
#endif
}
// op(a) . op(b) with the core's GEMM, for benchmarks and kernel tests.
template <class T>
py::array_t<T> matmul(const CArray<T>& a, const CArray<T>& b, bool trans_a, bool trans_b) {
  if (a.ndim() != 2 || b.ndim() != 2) throw py::value_error("gemm needs 2-dimensional arrays");
  const std::size_t M = static_cast<std::size_t>(a.shape(trans_a ? 1 : 0));
  const std::size_t K = static_cast<std::size_t>(a.shape(trans_a ? 0 : 1));
  const std::size_t Kb = static_cast<std::size_t>(b.shape(trans_b ? 1 : 0));
  const std::size_t N = static_cast<std::size_t>(b.shape(trans_b ? 0 : 1));
  if (K != Kb)
    throw py::value_error("gemm: inner sizes differ (" + std::to_string(K) + " and " +
                          std::to_string(Kb) + ")");
  py::array_t<T> c({static_cast<py::ssize_t>(M), static_cast<py::ssize_t>(N)});
  T* out = c.mutable_data();
  const T* pa = a.data();
  const T* pb = b.data();
  const std::size_t lda = static_cast<std::size_t>(a.shape(1)), ldb = static_cast<std::size_t>(b.shape(1));
  {
    py::gil_scoped_release release;
    if (K == 0) std::fill(out, out + M * N, T(0));
    else gemm<T>(trans_a ? Trans::T : Trans::N, trans_b ? Trans::T : Trans::N, M, N, K, T(1), pa, lda, pb,
                 ldb, T(0), out, N);
  }
  return c;
}

// No NaN or infinity in a C-contiguous array, without NumPy's temporaries.
template <class T>
bool all_finite_array(const CArray<T>& a) {
  const T* p = a.data();
  const std::size_t n = static_cast<std::size_t>(a.size());
  py::gil_scoped_release release;
  return all_finite(p, n);
}

}  // namespace

void register_runtime(py::module_& m) {
  m.attr("__version__") = BACKPROPX_VERSION;
  m.attr("compiler") = compiler();
  m.attr("build_type") = BACKPROPX_BUILD_TYPE;
  m.attr("activation_names") = activation_names();
  {
    py::dict kinds;  // layer kind -> the config keys it accepts
    for (const auto& k : layer_kinds<double>()) kinds[py::str(k.kind)] = k.keys;
    m.attr("layer_kinds") = kinds;
  }
  m.attr("loss_names") = loss_names();
  m.attr("optimizer_names") = optimizer_names();
  m.attr("init_names") = init_names();

  m.def("set_num_threads", &set_num_threads, py::arg("n"));
  m.def("get_num_threads", &get_num_threads);
  m.attr("max_threads") = kMaxThreads;
  m.def("get_threading", [] { return std::string(threading_name(threading())); });
  m.def("set_threading", [](const std::string& name) {
    if (name != "pool" && name != "openmp")
      throw std::invalid_argument("unknown threading '" + name + "'; expected pool or openmp");
    set_threading(name == "pool" ? Threading::pool : Threading::openmp);
  }, py::arg("name"), "Who runs the core's parallel loops: its own thread pool or OpenMP (same results)");
  m.def("thread_default", [] {
    const ThreadDefault d = thread_default_from_environment();
    return py::make_tuple(d.threads, d.source, d.ignored);
  }, "(threads, source, ignored): the start-up thread count, where it came from, and the "
     "environment values that were not valid thread counts");
  m.def("get_kernel", [] { return std::string(kernels::isa_name(kernels::active_isa())); });
  m.def("set_kernel", [](const std::string& name) {
    kernels::set_active_isa(kernels::isa_from_name(name.c_str()));
  }, py::arg("name"));
  m.def("supported_kernels", [] {
    std::vector<std::string> out;
    for (auto isa : {kernels::Isa::generic, kernels::Isa::avx2, kernels::Isa::avx512})
      if (kernels::isa_supported(isa)) out.emplace_back(kernels::isa_name(isa));
    return out;
  });

  m.def("gemm_float32", &matmul<float>, py::arg("a"), py::arg("b"), py::arg("trans_a") = false,
        py::arg("trans_b") = false, "op(a) @ op(b) with the core's GEMM (for benchmarks and tests)");
  m.def("gemm_float64", &matmul<double>, py::arg("a"), py::arg("b"), py::arg("trans_a") = false,
        py::arg("trans_b") = false, "op(a) @ op(b) with the core's GEMM (for benchmarks and tests)");

  m.def("all_finite_float32", &all_finite_array<float>, py::arg("a"),
        "True when no element is NaN or infinite (no temporary arrays)");
  m.def("all_finite_float64", &all_finite_array<double>, py::arg("a"),
        "True when no element is NaN or infinite (no temporary arrays)");

  py::register_exception<NonFiniteError>(m, "NonFiniteError", PyExc_FloatingPointError);
}

}  // namespace bpx::python
