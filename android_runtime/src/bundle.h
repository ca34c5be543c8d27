// A stretchc bundle as the runtime sees it: manifest.bin decoded into the manifest structs generated from
// schemas/manifest.fbs (generated/manifest_model.h), every rule of schemas/bundle_rules.json checked, and the
// names the manifest uses resolved to indexes.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "generated/bundle_rules.h"
#include "generated/manifest_model.h"

namespace stretch {

// A bundle that cannot be run because it breaks `rule` (schemas/bundle_rules.json); what() is one line for
// the user: "[rule-id] message", as the Python validator words it.
struct BundleError : std::runtime_error {
  BundleError(rules::Rule r, const std::string& message)
      : std::runtime_error(std::string("[") + rules::Id(r) + "] " + message), rule(r) {}
  rules::Rule rule;
};

// The manifest's tables under the names the runtime and its backends use.
using ModelIO = manifest::ModelIO;
using Option = manifest::Option;  // a delegate option: kind, and bool_value, int_value, float_value or string_value
using Partition = manifest::Partition;
using Slot = manifest::Slot;
using ValueKind = manifest::fbs::ValueKind;

// What the loader resolved for one partition (partitions[i] of the manifest).
struct PartitionPlan {
  std::vector<int> input_syncs, output_syncs;  // the sync point of each binding (inputs[k], outputs[k])
  int lane = -1;                               // index in lanes
  int step = -1;                               // index in steps
  std::vector<int> deps;      // partitions that must finish first (producers, and readers of bytes this one overwrites)
  std::vector<int> dep_sync;  // for each dep: the sync point it produces for us, or -1 (buffer reuse)
  std::vector<uint8_t> bytes;           // the checked partition file
  std::vector<uint8_t> fallback_bytes;  // the fallback file, when it is another file
};

// The manifest (every field, checked) and what the loader resolved; indexes refer to the manifest's lists.
struct Bundle : manifest::Manifest {
  std::string dir;
  std::vector<PartitionPlan> plans;            // per partition
  std::vector<int> sync_slot, sync_producer;   // per sync point: its slot; its producing partition (-1: the host)
  std::vector<int> input_sync, output_sync;    // per model input / output: its sync point
  std::vector<std::vector<int>> lanes, steps;  // per schedule lane / step: its partitions, in order

  const manifest::Slot& SlotOfSync(int sync) const { return buffers.slots[sync_slot[sync]]; }
};

// Reads DIR/manifest.bin and checks every rule of schemas/bundle_rules.json that this reader checks, in the
// table's order (the same rules, order and ids as stretchc.bundle.validate): the files, the flatbuffer,
// format and version, field types (generated from schemas/manifest.fbs), names and cross references,
// bindings, delegates and partition precisions, sizes and the arena, layouts, sync point quantization and
// conversions, the schedule (cover, no cycle, step order), live slots never sharing bytes, aliases, partition
// files and SHA256SUMS. Throws BundleError naming the first rule broken. With load_files=false the partition
// files are only checked, not kept. The rule partition-tensors is checked by Runtime when it binds the models.
Bundle LoadBundle(const std::string& dir, bool load_files = true);

// A lane's name in messages: its processor's for lane 0, "<processor>.<index>" for the others (stretchc.ir.lane_name).
inline std::string LaneName(const manifest::Lane& lane) {
  return lane.index == 0 ? lane.processor : lane.processor + "." + std::to_string(lane.index);
}

size_t DtypeSize(const std::string& dtype);  // 0 if the IR does not know it
bool ReadFile(const std::string& path, std::vector<uint8_t>* out, uint64_t max_bytes);

}  // namespace stretch
