// The safetensors file format, read and written without Python: an 8-byte
// little-endian header length N, N bytes of JSON header, then the raw
// little-endian tensor data. The header maps each tensor name to
// {"dtype", "shape", "data_offsets": [begin, end]} (offsets into the data)
// and may hold "__metadata__", an object of string values.
//
// Files are untrusted: read_safetensors checks the file type and size, the
// header's length, JSON (depth-limited), dtypes, shapes, that each tensor's
// byte count matches its shape, and that the offsets tile the data exactly,
// before returning; any problem is a std::invalid_argument naming it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "backpropx/common.hpp"

namespace bpx::io {

// The largest header we read: the Python package's limit too.
constexpr std::size_t kMaxHeaderBytes = 16u << 20;

struct TensorEntry {
  std::string name;
  std::string dtype;  // "F32", "F64", "I64", ... (safetensors' names)
  Shape shape;
  std::size_t begin = 0, end = 0;  // byte range in SafetensorsFile::data
};

struct SafetensorsFile {
  std::map<std::string, std::string> metadata;  // "__metadata__"
  std::vector<TensorEntry> tensors;             // in file (offset) order
  std::vector<unsigned char> data;              // every tensor's bytes

  const TensorEntry* find(const std::string& name) const;
};

// Bytes per element of a safetensors dtype name; 0 for names we do not know.
std::size_t dtype_size(const std::string& dtype);

// Reads and checks `path`. std::invalid_argument for a file that is not a
// valid safetensors file; std::runtime_error when it cannot be read.
SafetensorsFile read_safetensors(const std::string& path);

// Parses and checks the bytes of a whole file (what read_safetensors does after reading).
SafetensorsFile parse_safetensors(std::vector<unsigned char> bytes, const std::string& what = "the file");

// A tensor to write: name, dtype name, shape and its bytes (little-endian).
struct TensorData {
  std::string name;
  std::string dtype;
  Shape shape;
  const void* data = nullptr;
  std::size_t bytes = 0;
};

// Serialises tensors and metadata (tensors sorted by name, header padded
// with spaces to a multiple of 8 bytes as the Python package does).
std::vector<unsigned char> serialize_safetensors(const std::vector<TensorData>& tensors,
                                                 const std::map<std::string, std::string>& metadata);

// Writes `bytes` to `path` atomically: a temporary file in the same
// directory, flushed and fsynced, then renamed over `path`.
void atomic_write(const std::string& path, const std::vector<unsigned char>& bytes);

}  // namespace bpx::io
