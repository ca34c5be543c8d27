// A stretchc bundle as the runtime sees it: manifest.bin decoded into plain structs and fully checked.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace stretch {

// A bundle that cannot be run; what() is one line for the user.
struct BundleError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Quant {
  std::vector<double> scale;
  std::vector<int64_t> zero_point;
  int64_t axis = 0;
};

struct ModelIO {
  std::string name, sync, dtype, layout, bundle_dtype;
  std::vector<int64_t> shape, bundle_shape;
  bool has_perm = false;
  std::vector<int64_t> perm;
  bool has_quant = false;
  Quant quant;
  int sync_index = -1;
};

struct Binding {
  std::string tensor, sync;
  int sync_index = -1;
};

struct Option {
  enum Kind { kNull, kBool, kInt, kFloat, kString, kJson } kind = kNull;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;
};

struct Partition {
  std::string name, file, sha256, processor, delegate;
  std::map<std::string, Option> delegate_options;
  int threads = 1;
  std::vector<int> affinity;
  bool has_fallback = false;
  std::string fallback_processor, fallback_delegate, fallback_file;
  std::vector<std::string> regions;
  std::vector<Binding> inputs, outputs;
  int step = -1;  // index in schedule.steps
  int lane = -1;
  std::vector<int> deps;  // partitions that must finish first (producers, and readers of bytes this one overwrites)
  std::vector<int> dep_sync;  // for each dep: the sync point it produces for us, or -1 (buffer reuse)
  std::vector<uint8_t> bytes;  // the checked file contents
  std::vector<uint8_t> fallback_bytes;
};

struct SyncPoint {
  std::string name, value, producer, slot, kind;
  std::string onnx_tensor;  // the ONNX tensor it carries, for verification; empty when the manifest names none
  std::vector<std::string> consumers;
  int slot_index = -1;
  int producer_index = -1;  // -1 = host
};

struct Slot {
  std::string name, dtype;
  uint64_t offset = 0, size = 0;
  std::vector<int64_t> shape;
  int first_step = 0, last_step = 0;  // liveness, in schedule steps (host input = -1, host output = +inf)
};

struct Lane {
  std::string processor;
  std::vector<int> partitions;
};

struct Bundle {
  std::string dir;
  std::string model_name, compiler_version, target_name;
  std::vector<ModelIO> inputs, outputs;
  std::vector<Partition> partitions;
  std::vector<SyncPoint> sync_points;
  std::vector<Slot> slots;
  uint64_t alignment = 64, arena_size = 0;
  std::vector<Lane> lanes;
  std::vector<std::vector<int>> steps;
  bool has_predicted_latency = false;
  double predicted_latency_ms = 0;
};

// Reads DIR/manifest.bin and checks everything a runtime relies on: the flatbuffer itself, format and
// version, names and cross references, every path inside DIR, SHA-256 of every partition file (and of
// manifest.bin against SHA256SUMS when present), the buffer plan (alignment, bounds, sizes, no two live
// buffers sharing bytes) and the schedule (every partition once, lanes ordered by dependencies).
// Throws BundleError. With load_files=false the partition files are only checked, not kept.
Bundle LoadBundle(const std::string& dir, bool load_files = true);

size_t DtypeSize(const std::string& dtype);  // 0 if unknown
bool ReadFile(const std::string& path, std::vector<uint8_t>* out, uint64_t max_bytes);

}  // namespace stretch
