// Shared vocabulary of the core: size names, shapes and error helpers.
//
// Size legend, used in every shape comment of the core:
//   N    samples in a batch (rows)
//   IN   features entering a layer
//   OUT  features leaving a layer
//   C    classes / outputs of the network's last layer
//   P    parameters of a network (length of the flat buffers)
//   M, K GEMM sizes: C(M, N) = A(M, K) . B(K, N)
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

// Element-wise loops compiled once per x86-64 level and picked at load time
// (GCC/Clang function multi-versioning). The core is built with
// -ffp-contract=off, so every clone gives the same bits.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(__SANITIZE_ADDRESS__)
#define BPX_ELEMENTWISE_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define BPX_ELEMENTWISE_CLONES
#endif

namespace bpx {

// Per-sample shape of a layer's input or output. Dense layers use {features};
// N-d layers (convolution, pooling) will use e.g. {channels, height, width}.
using Shape = std::vector<std::size_t>;

inline std::size_t shape_size(const Shape& s) {
  std::size_t n = 1;
  for (std::size_t d : s) n *= d;
  return n;
}

std::string shape_str(const Shape& s);

// Errors the user can fix cross into Python as ValueError (pybind11 maps
// std::invalid_argument); exhausted memory as MemoryError (std::bad_alloc).
// Hot paths must not build a message that is not thrown: use the literal
// overload there, or an explicit `if (!ok) throw`.
inline void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}
inline void require(bool ok, const char* message) {
  if (!ok) throw std::invalid_argument(message);
}

// The error for a name that is not one of `choices`:
// "unknown <what> 'name'; expected one of: a, b, c".
std::invalid_argument unknown_name(const std::string& what, const std::string& name,
                                   const std::vector<std::string>& choices);

// Training produced NaN or infinity; crosses into Python as FloatingPointError.
class NonFiniteError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// True when no element is NaN or infinite: exactly those have all exponent
// bits set, and integer tests vectorise, unlike a floating-point reduction.
template <class T>
bool all_finite(const T* p, std::size_t n) {
  using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  constexpr Bits exponent = sizeof(T) == 4 ? Bits(0x7f800000u) : Bits(0x7ff0000000000000ull);
  Bits bad = 0;
  for (std::size_t i = 0; i < n; ++i) {
    Bits b;
    std::memcpy(&b, p + i, sizeof b);
    bad |= Bits((b & exponent) == exponent);
  }
  return bad == 0;
}

// A product of sizes that would overflow size_t is a MemoryError, not a crash.
std::size_t checked_mul(std::size_t a, std::size_t b);
// The same for a sum (a wrapped sum would under-allocate, then write past it).
std::size_t checked_add(std::size_t a, std::size_t b);

}  // namespace bpx

namespace bpx {

// An allocation that cannot succeed, refused before any memory is touched.
// Crosses into Python as MemoryError with this message.
class AllocationError : public std::bad_alloc {
 public:
  explicit AllocationError(std::string message) : message_(std::move(message)) {}
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

// Throws AllocationError when `bytes` exceed the machine's physical memory
// or (for 256 MiB and more, on Linux) the memory available now.
void check_allocation(std::size_t bytes, const std::string& what);

}  // namespace bpx
