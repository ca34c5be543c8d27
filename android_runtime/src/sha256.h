// SHA-256 (FIPS 180-4), small and dependency-free: partition files are checked against the manifest.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace stretch {
std::string Sha256Hex(const void* data, size_t size);
}
