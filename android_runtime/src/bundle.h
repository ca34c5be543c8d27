// A stretchc bundle as the runtime sees it: manifest.bin decoded into plain structs and fully checked.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "generated/bundle_rules.h"

namespace stretch {

// A bundle that cannot be run because it breaks `rule` (schemas/bundle_rules.json); what() is one line for
// the user: "[rule-id] message", as the Python validator words it.
struct BundleError : std::runtime_error {
  BundleError(rules::Rule r, const std::string& message)
      : std::runtime_error(std::string("[") + rules::Id(r) + "] " + message), rule(r) {}
  rules::Rule rule;
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
  std::string name, file, sha256, processor, precision, delegate;
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

// A QUANTIZE or DEQUANTIZE the compiler planned where a boundary tensor changes dtype (run inside `partition`).
struct Conversion {
  std::string partition, op, from_dtype, to_dtype;
};

struct SyncPoint {
  std::string name, value, producer, slot, kind;
  std::string onnx_tensor;  // the ONNX tensor it carries, for verification; empty when the manifest names none
  std::vector<std::string> consumers;
  bool has_quant = false;  // an int8/uint8 sync point: its scale and zero point
  Quant quant;
  std::vector<Conversion> conversions;
  int slot_index = -1;
  int producer_index = -1;  // -1 = host
};

struct Slot {
  std::string name, dtype;
  uint64_t offset = 0, size = 0;
  std::vector<int64_t> shape;
};

struct Lane {
  std::string processor;
  std::vector<std::string> names;  // as the manifest lists them
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
  std::vector<std::pair<std::string, std::string>> aliases;
  std::vector<Lane> lanes;
  std::vector<std::vector<std::string>> step_names;  // as the manifest lists them
  std::vector<std::vector<int>> steps;
  bool has_predicted_latency = false;
  double predicted_latency_ms = 0;
};

// Reads DIR/manifest.bin and checks every rule of schemas/bundle_rules.json that this reader checks, in the
// table's order (the same rules, order and ids as stretchc.bundle.validate): the files, the flatbuffer,
// format and version, field types, names and cross references, bindings, delegates and partition
// precisions, sizes and the arena, layouts, sync point quantization and conversions, the schedule (cover,
// no cycle, step order), live slots never sharing bytes, aliases, partition files and SHA256SUMS. Throws
// BundleError naming the first rule broken. With load_files=false the partition files are only checked,
// not kept. The rule partition-tensors is checked by Runtime when it binds the models.
Bundle LoadBundle(const std::string& dir, bool load_files = true);

size_t DtypeSize(const std::string& dtype);  // 0 if the IR does not know it
bool ReadFile(const std::string& path, std::vector<uint8_t>* out, uint64_t max_bytes);

}  // namespace stretch
