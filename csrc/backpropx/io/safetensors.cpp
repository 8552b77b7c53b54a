#include "backpropx/io/safetensors.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include "backpropx/io/json.hpp"

namespace bpx::io {

namespace {

[[noreturn]] void bad(const std::string& what, const std::string& why) {
  throw std::invalid_argument(what + " is not a valid safetensors file: " + why);
}

std::size_t to_size(const json::Value& v, const std::string& what, const std::string& field) {
  if (!v.is_integer()) bad(what, field + " must be a non-negative integer");
  const long long i = v.as_integer();
  if (i < 0) bad(what, field + " must be a non-negative integer, got " + v.text);
  return static_cast<std::size_t>(i);
}

std::system_error os_error(const std::string& action, const std::string& path) {
  return std::system_error(errno, std::generic_category(), action + " " + path);
}

}  // namespace

const TensorEntry* SafetensorsFile::find(const std::string& name) const {
  for (const auto& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

std::size_t dtype_size(const std::string& dtype) {
  static const std::map<std::string, std::size_t> sizes = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2},
      {"I8", 1},  {"U64", 8}, {"U32", 4}, {"U16", 2},  {"U8", 1},  {"BOOL", 1}};
  const auto it = sizes.find(dtype);
  return it == sizes.end() ? 0 : it->second;
}

SafetensorsFile read_safetensors(const std::string& path) {
  // A FIFO or a device would block or never end: only regular files, and
  // their size is known before a byte is read.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw os_error("cannot open", path);
  if (!S_ISREG(st.st_mode)) throw std::invalid_argument(path + " is not a regular file");
  const std::size_t size = static_cast<std::size_t>(st.st_size);
  check_allocation(size, "reading " + path);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw os_error("cannot open", path);
  std::vector<unsigned char> bytes(size);
  std::size_t done = 0;
  while (done < size) {
    const ssize_t got = ::read(fd, bytes.data() + done, size - done);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      const int saved = errno;
      ::close(fd);
      if (got == 0) bad(path, "the file shrank while it was read");
      errno = saved;
      throw os_error("cannot read", path);
    }
    done += static_cast<std::size_t>(got);
  }
  ::close(fd);
  return parse_safetensors(std::move(bytes), path);
}

SafetensorsFile parse_safetensors(std::vector<unsigned char> bytes, const std::string& what) {
  if (bytes.size() < 8) bad(what, "only " + std::to_string(bytes.size()) + " bytes");
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[static_cast<std::size_t>(i)];
  if (n > bytes.size() - 8 || n > kMaxHeaderBytes || n < 2 || bytes[8] != '{')
    throw std::invalid_argument(what + " is not a safetensors file (its first 8 bytes do not give the length "
                                "of a JSON header)");
  const std::string header(reinterpret_cast<const char*>(bytes.data()) + 8, static_cast<std::size_t>(n));
  json::Value root;
  try {
    root = json::parse(header);
  } catch (const std::invalid_argument& e) {
    bad(what, std::string("header: ") + e.what());
  }
  if (root.type != json::Value::Type::object) bad(what, "the header is not a JSON object");

  SafetensorsFile file;
  const std::size_t data_size = bytes.size() - 8 - static_cast<std::size_t>(n);
  for (const auto& [name, entry] : root.members) {
    if (name == "__metadata__") {
      if (entry.type != json::Value::Type::object) bad(what, "__metadata__ is not an object");
      for (const auto& [key, value] : entry.members) {
        if (value.type != json::Value::Type::string) bad(what, "metadata value '" + key + "' is not a string");
        if (!file.metadata.emplace(key, value.text).second) bad(what, "metadata key '" + key + "' appears twice");
      }
      continue;
    }
    if (entry.type != json::Value::Type::object) bad(what, "tensor '" + name + "' is not described by an object");
    const json::Value* dtype = entry.find("dtype");
    const json::Value* shape = entry.find("shape");
    const json::Value* offsets = entry.find("data_offsets");
    if (!dtype || dtype->type != json::Value::Type::string || dtype_size(dtype->text) == 0)
      bad(what, "tensor '" + name + "' has no known dtype");
    if (!shape || shape->type != json::Value::Type::array) bad(what, "tensor '" + name + "' has no shape");
    if (!offsets || offsets->type != json::Value::Type::array || offsets->items.size() != 2)
      bad(what, "tensor '" + name + "' has no data_offsets [begin, end]");
    TensorEntry t;
    t.name = name;
    t.dtype = dtype->text;
    std::size_t count = 1;
    for (const auto& d : shape->items) {
      t.shape.push_back(to_size(d, what, "a dimension of '" + name + "'"));
      if (t.shape.back() != 0 && count > static_cast<std::size_t>(-1) / t.shape.back())
        bad(what, "tensor '" + name + "' has a shape too large to address");
      count *= t.shape.back();
    }
    t.begin = to_size(offsets->items[0], what, "data_offsets of '" + name + "'");
    t.end = to_size(offsets->items[1], what, "data_offsets of '" + name + "'");
    const std::size_t esize = dtype_size(t.dtype);
    if (count > static_cast<std::size_t>(-1) / esize) bad(what, "tensor '" + name + "' is too large");
    if (t.begin > t.end || t.end > data_size || t.end - t.begin != count * esize)
      bad(what, "tensor '" + name + "' has data_offsets [" + std::to_string(t.begin) + ", " +
                    std::to_string(t.end) + "] that do not match its shape and dtype (" +
                    std::to_string(count * esize) + " bytes) within " + std::to_string(data_size) +
                    " bytes of data");
    for (const auto& other : file.tensors)
      if (other.name == name) bad(what, "tensor '" + name + "' appears twice");
    file.tensors.push_back(std::move(t));
  }
  // The tensors must tile the data exactly: no gaps, no overlaps, nothing after.
  std::sort(file.tensors.begin(), file.tensors.end(),
            [](const TensorEntry& a, const TensorEntry& b) { return a.begin < b.begin || (a.begin == b.begin && a.end < b.end); });
  std::size_t at = 0;
  for (const auto& t : file.tensors) {
    if (t.begin != at) bad(what, "tensor data overlaps or leaves a gap at byte " + std::to_string(at));
    at = t.end;
  }
  if (at != data_size) bad(what, std::to_string(data_size - at) + " bytes after the last tensor");
  file.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(8 + n), bytes.end());
  return file;
}

std::vector<unsigned char> serialize_safetensors(const std::vector<TensorData>& tensors,
                                                 const std::map<std::string, std::string>& metadata) {
  std::vector<const TensorData*> order;
  for (const auto& t : tensors) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](const TensorData* a, const TensorData* b) { return a->name < b->name; });
  std::vector<std::pair<std::string, json::Value>> members;
  if (!metadata.empty()) {
    std::vector<std::pair<std::string, json::Value>> meta;
    for (const auto& [k, v] : metadata) meta.emplace_back(k, json::make_string(v));
    members.emplace_back("__metadata__", json::make_object(std::move(meta)));
  }
  std::size_t offset = 0;
  for (const TensorData* t : order) {
    std::size_t count = 1;
    for (std::size_t d : t->shape) count = checked_mul(count, d);
    require(dtype_size(t->dtype) != 0, "unknown safetensors dtype '" + t->dtype + "'");
    require(checked_mul(count, dtype_size(t->dtype)) == t->bytes,
            "tensor '" + t->name + "': " + std::to_string(t->bytes) + " bytes do not match its shape");
    std::vector<json::Value> shape;
    for (std::size_t d : t->shape) shape.push_back(json::make_integer(static_cast<long long>(d)));
    members.emplace_back(t->name, json::make_object({
        {"dtype", json::make_string(t->dtype)},
        {"shape", json::make_array(std::move(shape))},
        {"data_offsets", json::make_array({json::make_integer(static_cast<long long>(offset)),
                                           json::make_integer(static_cast<long long>(offset + t->bytes))})},
    }));
    offset += t->bytes;
  }
  std::string header = json::dump(json::make_object(std::move(members)));
  while (header.size() % 8 != 0) header += ' ';
  require(header.size() <= kMaxHeaderBytes, "the header would exceed " + std::to_string(kMaxHeaderBytes) +
                                                " bytes, which no reader accepts");
  std::vector<unsigned char> out(8 + header.size() + offset);
  const std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<unsigned char>(n >> (8 * i));
  std::memcpy(out.data() + 8, header.data(), header.size());
  std::size_t at = 8 + header.size();
  for (const TensorData* t : order) {
    if (t->bytes) std::memcpy(out.data() + at, t->data, t->bytes);
    at += t->bytes;
  }
  return out;
}

void atomic_write(const std::string& path, const std::vector<unsigned char>& bytes) {
  const std::size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  std::string tmp = dir + "/.tmp-backpropx-XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) throw os_error("cannot create a temporary file in", dir);
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t put = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (put < 0 && errno == EINTR) continue;
    if (put <= 0) {
      const int saved = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      errno = saved;
      throw os_error("cannot write", path);
    }
    done += static_cast<std::size_t>(put);
  }
  if (::fsync(fd) != 0 || ::fchmod(fd, 0644) != 0) {
    const int saved = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    errno = saved;
    throw os_error("cannot write", path);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int saved = errno;
    ::unlink(tmp.c_str());
    errno = saved;
    throw os_error("cannot write", path);
  }
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace bpx::io
