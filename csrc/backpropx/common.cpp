#include "backpropx/common.hpp"

#include <unistd.h>

namespace bpx {

std::string shape_str(const Shape& s) {
  std::string out = "(";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + (s.size() == 1 ? ",)" : ")");
}

std::invalid_argument unknown_name(const std::string& what, const std::string& name,
                                   const std::vector<std::string>& choices) {
  std::string list;
  for (const auto& c : choices) list += (list.empty() ? "" : ", ") + c;
  return std::invalid_argument("unknown " + what + " '" + name + "'; expected one of: " + list);
}

std::size_t checked_mul(std::size_t a, std::size_t b) {
  if (a != 0 && b > static_cast<std::size_t>(-1) / a)
    throw AllocationError("size " + std::to_string(a) + " x " + std::to_string(b) +
                          " overflows the address space");
  return a * b;
}

std::size_t checked_add(std::size_t a, std::size_t b) {
  if (b > static_cast<std::size_t>(-1) - a)
    throw AllocationError("size " + std::to_string(a) + " + " + std::to_string(b) +
                          " overflows the address space");
  return a + b;
}

void check_allocation(std::size_t bytes, const std::string& what) {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return;  // unknown: let the allocator decide
  const std::size_t physical = static_cast<std::size_t>(pages) * static_cast<std::size_t>(page);
  if (bytes > physical)
    throw AllocationError(what + " needs " + std::to_string(bytes >> 20) +
                          " MiB, more than this machine's " + std::to_string(physical >> 20) +
                          " MiB of memory");
}

}  // namespace bpx
