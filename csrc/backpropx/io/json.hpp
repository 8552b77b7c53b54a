// A small JSON reader and writer for the model file header: enough for
// safetensors headers and backpropx's metadata, strict (RFC 8259), and safe
// on hostile input: nesting depth and size are bounded, every error is a
// std::invalid_argument naming the offset, never a crash.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace bpx::json {

struct Value {
  enum class Type { null, boolean, number, string, array, object };
  Type type = Type::null;
  bool boolean = false;
  // Numbers keep their text: integers (no '.', 'e' or 'E') are read as
  // integers, others as reals, as Python's json module does.
  std::string text;   // number: its literal; string: the decoded text
  std::vector<Value> items;                            // array
  std::vector<std::pair<std::string, Value>> members;  // object, in file order

  bool is_integer() const;
  long long as_integer() const;  // throws unless an integer that fits
  double as_real() const;        // any number
  const Value* find(const std::string& key) const;  // object member or nullptr
};

constexpr std::size_t kMaxDepth = 64;

// Parses one JSON value filling all of `text` (whitespace around allowed).
Value parse(const std::string& text);

// Serialises compactly, as Python's json.dumps(..., separators=(", ", ": ")) would.
std::string dump(const Value& v);

Value make_string(std::string s);
Value make_integer(long long v);
Value make_real(double v);  // always written with '.' or an exponent; finite values only
Value make_bool(bool b);
Value make_object(std::vector<std::pair<std::string, Value>> members);
Value make_array(std::vector<Value> items);

}  // namespace bpx::json
