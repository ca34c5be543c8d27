// The primitives the generated manifest reader (generated/manifest_model.h) is made of: decoding a verified
// FlatBuffer field into a plain value, and checking one value against a rule of schemas/manifest.fbs. They
// know no manifest field; the generated code applies them field by field.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "flatbuffers/flatbuffers.h"

namespace stretch {
namespace manifest {

// manifest.bin does not carry a manifest the codec can read (rule manifest-syntax): a required field is
// missing, a string is not UTF-8, a value kind is unknown, a map lists a key twice. what(): "<field>: <why>".
struct Malformed : std::runtime_error {
  Malformed(const std::string& at, const std::string& why) : std::runtime_error(at + ": " + why) {}
};

// A field breaks its own rule of the schema (rule schema). what(): "<field>: <why>".
struct FieldError : std::runtime_error {
  FieldError(const std::string& at, const std::string& why) : std::runtime_error(at + ": " + why) {}
};

// Strings of min_length to max_length characters, each one of `chars`.
struct Chars {
  const char* chars;
  size_t min_length, max_length;
};

inline std::string Sub(const std::string& at, const char* field) { return at.empty() ? field : at + "." + field; }
inline std::string Item(const std::string& at, size_t i) { return at + "[" + std::to_string(i) + "]"; }
inline std::string Quoted(const std::string& v) { return "'" + v.substr(0, 64) + (v.size() > 64 ? "...'" : "'"); }

inline bool ValidUtf8(const std::string& s) {
  size_t i = 0, n = s.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (len == 0 || i + len > n || (len == 2 && c < 0xc2) || (len == 4 && c > 0xf4)) return false;
    for (size_t k = 1; k < len; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return false;
    if (len == 3) {
      unsigned char d = static_cast<unsigned char>(s[i + 1]);
      if ((c == 0xe0 && d < 0xa0) || (c == 0xed && d >= 0xa0)) return false;  // overlong, surrogates
    }
    if (len == 4) {
      unsigned char d = static_cast<unsigned char>(s[i + 1]);
      if ((c == 0xf0 && d < 0x90) || (c == 0xf4 && d >= 0x90)) return false;
    }
    i += len;
  }
  return true;
}

// ---------------------------------------------------------------- decoding (Malformed); pointers are present

// A required field that is absent (the FlatBuffers verifier refuses most of these first).
template <typename T>
void Need(const T* x, const std::string& at) {
  if (x == nullptr) throw Malformed(at, "is missing");
}

inline std::string DecodeString(const flatbuffers::String* s, const std::string& at) {
  std::string out(s->c_str(), s->size());
  if (!ValidUtf8(out)) throw Malformed(at, "is not UTF-8");
  return out;
}

inline std::vector<std::string> DecodeStrings(const flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>* v, const std::string& at) {
  std::vector<std::string> out;
  for (flatbuffers::uoffset_t i = 0; i < v->size(); ++i) out.push_back(DecodeString(v->Get(i), Item(at, i)));
  return out;
}

template <typename T>
std::vector<T> DecodeScalars(const flatbuffers::Vector<T>* v, const std::string&) {
  return std::vector<T>(v->begin(), v->end());
}

// An enum value flatc's EnumValues<E>() lists.
template <typename E, size_t N>
E DecodeEnum(E v, const E (&values)[N], const std::string& at) {
  for (E x : values)
    if (x == v) return v;
  throw Malformed(at, "unknown value " + std::to_string(static_cast<int64_t>(v)));
}

// ---------------------------------------------------------------- field rules (FieldError)

inline void CheckString(const std::string& v, const std::string& at) {
  if (v.find('\0') != std::string::npos) throw FieldError(at, "contains a NUL character");
}

inline void CheckChars(const std::string& v, const Chars& c, const std::string& at) {
  bool ok = v.size() >= c.min_length && v.size() <= c.max_length;
  for (char ch : v) ok = ok && std::char_traits<char>::find(c.chars, std::char_traits<char>::length(c.chars), ch) != nullptr;
  if (!ok) throw FieldError(at, "is not " + std::to_string(c.min_length) + (c.min_length == c.max_length ? "" : " to " + std::to_string(c.max_length)) +
                                    " of [" + c.chars + "]: " + Quoted(v));
}

template <size_t N>
void CheckOneOf(const std::string& v, const char* const (&words)[N], const std::string& at) {
  std::string all;
  for (const char* w : words) {
    if (v == w) return;
    all += (all.empty() ? "" : ", ") + std::string(w);
  }
  throw FieldError(at, Quoted(v) + " is not one of " + all);
}

inline void CheckOneOf(const std::string& v, const std::vector<std::string>& words, const std::string& at) {
  std::string all;
  for (const auto& w : words) {
    if (v == w) return;
    all += (all.empty() ? "" : ", ") + w;
  }
  throw FieldError(at, Quoted(v) + " is not one of " + all);
}

inline void CheckConst(const std::string& v, const char* want, const std::string& at) {
  if (v != want) throw FieldError(at, "must be " + std::string(want) + ", not " + Quoted(v));
}

inline void CheckConst(int64_t v, int64_t want, const std::string& at) {
  if (v != want) throw FieldError(at, "must be " + std::to_string(want) + ", not " + std::to_string(v));
}

inline void CheckRange(int64_t v, int64_t lo, int64_t hi, const std::string& at) {
  if (v < lo || v > hi) throw FieldError(at, std::to_string(v) + " is outside " + std::to_string(lo) + ".." + std::to_string(hi));
}

inline void CheckFinite(double v, const std::string& at) {
  if (!std::isfinite(v)) throw FieldError(at, "is not a finite number");
}

inline void CheckMinItems(size_t n, size_t least, const std::string& at) {
  if (n < least) throw FieldError(at, "has " + std::to_string(n) + " items, fewer than " + std::to_string(least));
}

}  // namespace manifest
}  // namespace stretch
