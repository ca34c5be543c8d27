#include "backend.h"

#include <map>

namespace stretch {
namespace backends {

namespace {

using rules::Rule;

// TfLiteType values (tflite_types.h), which LiteRT's element types share.
int32_t TfLiteTypeOf(const std::string& dtype) {
  static const std::map<std::string, int32_t> kType = {{"float32", 1}, {"int32", 2}, {"uint8", 3}, {"int64", 4},
                                                       {"bool", 6},    {"int16", 7}, {"int8", 9},  {"float16", 10}};
  auto it = kType.find(dtype);
  return it == kType.end() ? -1 : it->second;
}

const Option* Find(const Partition& q, const std::string& key, ValueKind kind, const char* what) {
  auto it = q.delegate_options.find(key);
  if (it == q.delegate_options.end() || it->second.kind == ValueKind::Null) return nullptr;
  if (it->second.kind != kind)
    throw BundleError(Rule::kSchema, "partition " + q.name + ": delegate option " + key + " must be " + what);
  return &it->second;
}

}  // namespace

const Bound& Job::Find(bool input, const std::string& name) const {
  for (const auto& b : input ? inputs : outputs)
    if (b.tensor == name) return b;
  throw BundleError(Rule::kPartitionTensors, "partition " + partition->name + ": model tensor " + name + " is not bound by the manifest");
}

void Job::CheckCounts(size_t num_inputs, size_t num_outputs) const {
  if (num_inputs != inputs.size() || num_outputs != outputs.size())
    throw BundleError(Rule::kPartitionTensors, "partition " + partition->name + ": the model has " + std::to_string(num_inputs) +
                                                   " inputs and " + std::to_string(num_outputs) + " outputs, the manifest binds " +
                                                   std::to_string(inputs.size()) + " and " + std::to_string(outputs.size()));
}

void Job::CheckType(const Bound& b, int32_t type, const std::vector<int64_t>& dims) const {
  if (type != TfLiteTypeOf(b.slot->dtype) || dims != b.slot->shape)
    throw BundleError(Rule::kPartitionTensors,
                      "partition " + partition->name + ": tensor " + b.tensor + " is not the " + b.slot->dtype + " tensor of slot " + b.slot->name);
}

int64_t IntOption(const Partition& q, const std::string& key, int64_t fallback) {
  const Option* o = Find(q, key, ValueKind::Int, "an integer");
  return o ? o->int_value : fallback;
}

std::string StringOption(const Partition& q, const std::string& key, const std::string& fallback) {
  const Option* o = Find(q, key, ValueKind::String, "a string");
  return o ? *o->string_value : fallback;  // a String option has its text (manifest::Decode)
}

int EnumOption(const Partition& q, const std::string& key, const std::string& value, const std::vector<std::string>& names) {
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == value) return static_cast<int>(i);
  std::string all;
  for (const auto& n : names) all += (all.empty() ? "" : ", ") + n;
  throw BundleError(Rule::kSchema, "partition " + q.name + ": delegate option " + key + " is " + value + ", not one of " + all);
}

}  // namespace backends
}  // namespace stretch
