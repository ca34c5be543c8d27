// .npy files (format 1.0/2.0, little-endian, C order) for model inputs and outputs.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace stretch {

struct NpyArray {
  std::string dtype;  // stretchc dtype name: float32, int8, ...
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;
};

// Throws std::runtime_error with a one-line message.
NpyArray ReadNpy(const std::string& path);
void WriteNpy(const std::string& path, const NpyArray& a);

}  // namespace stretch
