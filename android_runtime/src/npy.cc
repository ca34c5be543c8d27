#include "npy.h"

#include <cstdio>
#include <cstring>
#include <map>
#include <stdexcept>

#include "bundle.h"

namespace stretch {
namespace {
const std::map<std::string, std::string> kDescr = {
    {"<f4", "float32"}, {"<f2", "float16"}, {"<i4", "int32"}, {"<i8", "int64"}, {"|i1", "int8"},
    {"|u1", "uint8"},   {"<i2", "int16"},   {"|b1", "bool"},  {"i1", "int8"},   {"u1", "uint8"}};

std::string Field(const std::string& header, const std::string& key) {
  auto k = header.find("'" + key + "'");
  if (k == std::string::npos) throw std::runtime_error("npy header lacks '" + key + "'");
  auto colon = header.find(':', k);
  if (colon == std::string::npos) throw std::runtime_error("malformed npy header");
  size_t i = colon + 1;
  while (i < header.size() && header[i] == ' ') ++i;
  if (i >= header.size()) throw std::runtime_error("malformed npy header");
  if (header[i] == '\'') {
    auto e = header.find('\'', i + 1);
    if (e == std::string::npos) throw std::runtime_error("malformed npy header");
    return header.substr(i + 1, e - i - 1);
  }
  if (header[i] == '(') {
    auto e = header.find(')', i);
    if (e == std::string::npos) throw std::runtime_error("malformed npy header");
    return header.substr(i, e - i + 1);
  }
  auto e = header.find_first_of(",}", i);
  return header.substr(i, e == std::string::npos ? std::string::npos : e - i);
}
}  // namespace

NpyArray ReadNpy(const std::string& path) {
  std::vector<uint8_t> bytes;
  if (!ReadFile(path, &bytes, 4ull << 30)) throw std::runtime_error("cannot read " + path);
  if (bytes.size() < 10 || std::memcmp(bytes.data(), "\x93NUMPY", 6) != 0) throw std::runtime_error(path + " is not a .npy file");
  size_t hlen, off;
  if (bytes[6] == 1) { hlen = bytes[8] | (bytes[9] << 8); off = 10; }
  else if (bytes.size() >= 12) { hlen = bytes[8] | (bytes[9] << 8) | (bytes[10] << 16) | (size_t(bytes[11]) << 24); off = 12; }
  else throw std::runtime_error(path + " is not a .npy file");
  if (off + hlen > bytes.size()) throw std::runtime_error(path + ": truncated npy header");
  std::string header(bytes.begin() + off, bytes.begin() + off + hlen);
  NpyArray a;
  auto d = kDescr.find(Field(header, "descr"));
  if (d == kDescr.end()) throw std::runtime_error(path + ": unsupported npy dtype " + Field(header, "descr"));
  a.dtype = d->second;
  if (Field(header, "fortran_order").find("True") != std::string::npos) throw std::runtime_error(path + ": Fortran-order arrays are not supported");
  std::string shape = Field(header, "shape");
  size_t n = 1;
  for (size_t i = 1; i < shape.size();) {
    while (i < shape.size() && !isdigit(static_cast<unsigned char>(shape[i]))) ++i;
    if (i >= shape.size()) break;
    size_t j = i;
    while (j < shape.size() && isdigit(static_cast<unsigned char>(shape[j]))) ++j;
    a.shape.push_back(std::stoll(shape.substr(i, j - i)));
    n *= static_cast<size_t>(a.shape.back());
    i = j;
  }
  size_t nbytes = n * DtypeSize(a.dtype);
  if (bytes.size() - off - hlen != nbytes)
    throw std::runtime_error(path + ": data size " + std::to_string(bytes.size() - off - hlen) + " does not match its shape");
  a.data.assign(bytes.begin() + off + hlen, bytes.end());
  return a;
}

void WriteNpy(const std::string& path, const NpyArray& a) {
  std::string descr;
  for (auto& kv : kDescr)
    if (kv.second == a.dtype && kv.first.size() == 3) descr = kv.first;
  std::string shape = "(";
  for (size_t i = 0; i < a.shape.size(); ++i) shape += std::to_string(a.shape[i]) + (a.shape.size() == 1 ? "," : (i + 1 < a.shape.size() ? ", " : ""));
  shape += ")";
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw std::runtime_error("cannot write " + path);
  unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, static_cast<unsigned char>(header.size() & 0xff),
                           static_cast<unsigned char>(header.size() >> 8)};
  bool ok = std::fwrite(pre, 1, 10, f) == 10 && std::fwrite(header.data(), 1, header.size(), f) == header.size() &&
            std::fwrite(a.data.data(), 1, a.data.size(), f) == a.data.size();
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) throw std::runtime_error("cannot write " + path);
}

}  // namespace stretch
