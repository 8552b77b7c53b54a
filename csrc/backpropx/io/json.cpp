#include "backpropx/io/json.hpp"

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace bpx::json {

namespace {

class Parser {
 public:
  explicit Parser(const std::string& s) : s_(s) {}

  Value document() {
    Value v = value(0);
    skip_space();
    if (pos_ != s_.size()) fail("unexpected text after the value");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw std::invalid_argument("invalid JSON at offset " + std::to_string(pos_) + ": " + what);
  }

  void skip_space() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }

  bool consume(char c) {
    skip_space();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  void expect(char c) {
    if (!consume(c)) fail(std::string("expected '") + c + "'");
  }

  Value value(std::size_t depth) {
    if (depth > kMaxDepth) fail("nested deeper than " + std::to_string(kMaxDepth) + " levels");
    skip_space();
    if (pos_ >= s_.size()) fail("unexpected end");
    const char c = s_[pos_];
    if (c == '{') return object(depth);
    if (c == '[') return array(depth);
    if (c == '"') {
      Value v;
      v.type = Value::Type::string;
      v.text = string();
      return v;
    }
    if (c == '-' || (c >= '0' && c <= '9')) return number();
    for (const char* word : {"true", "false", "null"}) {
      const std::string w(word);
      if (s_.compare(pos_, w.size(), w) == 0) {
        pos_ += w.size();
        Value v;
        if (w == "null") return v;
        v.type = Value::Type::boolean;
        v.boolean = w == "true";
        return v;
      }
    }
    fail("unexpected character");
  }

  Value object(std::size_t depth) {
    Value v;
    v.type = Value::Type::object;
    ++pos_;
    if (consume('}')) return v;
    do {
      skip_space();
      if (pos_ >= s_.size() || s_[pos_] != '"') fail("expected a member name");
      std::string key = string();
      expect(':');
      v.members.emplace_back(std::move(key), value(depth + 1));
    } while (consume(','));
    expect('}');
    return v;
  }

  Value array(std::size_t depth) {
    Value v;
    v.type = Value::Type::array;
    ++pos_;
    if (consume(']')) return v;
    do v.items.push_back(value(depth + 1));
    while (consume(','));
    expect(']');
    return v;
  }

  Value number() {
    const std::size_t start = pos_;
    if (s_[pos_] == '-') ++pos_;
    auto digits = [&] {
      const std::size_t from = pos_;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
      if (pos_ == from) fail("malformed number");
    };
    if (pos_ < s_.size() && s_[pos_] == '0') ++pos_;
    else digits();
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      digits();
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      digits();
    }
    Value v;
    v.type = Value::Type::number;
    v.text = s_.substr(start, pos_ - start);
    return v;
  }

  unsigned hex4() {
    if (pos_ + 4 > s_.size()) fail("truncated \\u escape");
    unsigned code = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = s_[pos_++];
      code <<= 4;
      if (h >= '0' && h <= '9') code |= unsigned(h - '0');
      else if (h >= 'a' && h <= 'f') code |= unsigned(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') code |= unsigned(h - 'A' + 10);
      else fail("bad \\u escape");
    }
    return code;
  }

  void append_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) out += char(cp);
    else if (cp < 0x800) {
      out += char(0xC0 | (cp >> 6));
      out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += char(0xE0 | (cp >> 12));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    } else {
      out += char(0xF0 | (cp >> 18));
      out += char(0x80 | ((cp >> 12) & 0x3F));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    }
  }

  std::string string() {
    ++pos_;  // opening quote
    std::string out;
    while (true) {
      if (pos_ >= s_.size()) fail("unterminated string");
      const unsigned char c = static_cast<unsigned char>(s_[pos_++]);
      if (c == '"') return out;
      if (c < 0x20) fail("control character in a string");
      if (c != '\\') {
        out += char(c);
        continue;
      }
      if (pos_ >= s_.size()) fail("unterminated escape");
      const char e = s_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xD800 && cp <= 0xDBFF) {  // a surrogate pair
            if (pos_ + 2 > s_.size() || s_[pos_] != '\\' || s_[pos_ + 1] != 'u') fail("lone surrogate");
            pos_ += 2;
            const unsigned low = hex4();
            if (low < 0xDC00 || low > 0xDFFF) fail("bad surrogate pair");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            fail("lone surrogate");
          }
          append_utf8(out, cp);
          break;
        }
        default: fail("unknown escape");
      }
    }
  }

  const std::string& s_;
  std::size_t pos_ = 0;
};

void dump_string(const std::string& s, std::string& out) {
  out += '"';
  for (const char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += ch;  // UTF-8 passes through, as json.dumps(..., ensure_ascii=False)
        }
    }
  }
  out += '"';
}

void dump_into(const Value& v, std::string& out) {
  switch (v.type) {
    case Value::Type::null: out += "null"; break;
    case Value::Type::boolean: out += v.boolean ? "true" : "false"; break;
    case Value::Type::number: out += v.text; break;
    case Value::Type::string: dump_string(v.text, out); break;
    case Value::Type::array:
      out += '[';
      for (std::size_t i = 0; i < v.items.size(); ++i) {
        if (i) out += ", ";
        dump_into(v.items[i], out);
      }
      out += ']';
      break;
    case Value::Type::object:
      out += '{';
      for (std::size_t i = 0; i < v.members.size(); ++i) {
        if (i) out += ", ";
        dump_string(v.members[i].first, out);
        out += ": ";
        dump_into(v.members[i].second, out);
      }
      out += '}';
      break;
  }
}

}  // namespace

bool Value::is_integer() const {
  return type == Type::number && text.find_first_of(".eE") == std::string::npos;
}

long long Value::as_integer() const {
  if (!is_integer()) throw std::invalid_argument("expected an integer, got " + (type == Type::number ? text : "a non-number"));
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (errno == ERANGE || *end != '\0') throw std::invalid_argument("integer " + text + " is out of range");
  return v;
}

double Value::as_real() const {
  if (type != Type::number) throw std::invalid_argument("expected a number");
  return std::strtod(text.c_str(), nullptr);
}

const Value* Value::find(const std::string& key) const {
  for (const auto& m : members)
    if (m.first == key) return &m.second;
  return nullptr;
}

Value parse(const std::string& text) { return Parser(text).document(); }

std::string dump(const Value& v) {
  std::string out;
  dump_into(v, out);
  return out;
}

Value make_string(std::string s) {
  Value v;
  v.type = Value::Type::string;
  v.text = std::move(s);
  return v;
}

Value make_integer(long long i) {
  Value v;
  v.type = Value::Type::number;
  v.text = std::to_string(i);
  return v;
}

Value make_real(double d) {
  if (!std::isfinite(d)) throw std::invalid_argument("JSON cannot hold " + std::to_string(d));
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  std::string s(buf);
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
  Value v;
  v.type = Value::Type::number;
  v.text = s;
  return v;
}

Value make_bool(bool b) {
  Value v;
  v.type = Value::Type::boolean;
  v.boolean = b;
  return v;
}

Value make_object(std::vector<std::pair<std::string, Value>> members) {
  Value v;
  v.type = Value::Type::object;
  v.members = std::move(members);
  return v;
}

Value make_array(std::vector<Value> items) {
  Value v;
  v.type = Value::Type::array;
  v.items = std::move(items);
  return v;
}

}  // namespace bpx::json
