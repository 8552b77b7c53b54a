#include "backpropx/activations.hpp"
#include "backpropx/init.hpp"
#include "backpropx/losses.hpp"
#include "backpropx/optimizers.hpp"
#include "backpropx/parallel.hpp"
#include "kernels/kernels.hpp"
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
}  // namespace

void register_runtime(py::module_& m) {
  m.attr("__version__") = BACKPROPX_VERSION;
  m.attr("compiler") = compiler();
  m.attr("build_type") = BACKPROPX_BUILD_TYPE;
  m.attr("activation_names") = activation_names();
  m.attr("loss_names") = loss_names();
  m.attr("optimizer_names") = optimizer_names();
  m.attr("init_names") = init_names();

  m.def("set_num_threads", &set_num_threads, py::arg("n"));
  m.def("get_num_threads", &get_num_threads);
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

  py::register_exception<NonFiniteError>(m, "NonFiniteError", PyExc_FloatingPointError);
}

}  // namespace bpx::python
