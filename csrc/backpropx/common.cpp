#include "backpropx/common.hpp"

#include <cstdio>

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

namespace {
// MemAvailable + SwapFree from /proc/meminfo (Linux), in bytes; 0 if unknown.
std::size_t available_memory() {
  std::FILE* f = std::fopen("/proc/meminfo", "r");
  if (f == nullptr) return 0;
  char line[256];
  unsigned long long kib = 0, value = 0;
  bool found = false;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::sscanf(line, "MemAvailable: %llu kB", &value) == 1 ||
        std::sscanf(line, "SwapFree: %llu kB", &value) == 1) {
      kib += value;
      found = true;
    }
  }
  std::fclose(f);
  return found ? static_cast<std::size_t>(kib) * 1024 : 0;
}
}  // namespace

void check_allocation(std::size_t bytes, const std::string& what) {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return;  // unknown: let the allocator decide
  const std::size_t physical = static_cast<std::size_t>(pages) * static_cast<std::size_t>(page);
  if (bytes > physical)
    throw AllocationError(what + " needs " + std::to_string(bytes >> 20) +
                          " MiB, more than this machine's " + std::to_string(physical >> 20) +
                          " MiB of memory");
  // Linux grants more than it has and kills the process that touches it
  // (the OOM killer): a large request is compared with what is free now.
  // Small ones skip the read of /proc (predict calls this every time).
  if (bytes < (std::size_t{256} << 20)) return;
  const std::size_t available = available_memory();
  if (available > 0 && bytes > available)
    throw AllocationError(what + " needs " + std::to_string(bytes >> 20) + " MiB, more than the " +
                          std::to_string(available >> 20) + " MiB of memory available now");
}

}  // namespace bpx
