#include "bundle.h"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <tuple>
#include <utility>

#include <sys/stat.h>

#include "backends/registry.h"
#include "sha256.h"

namespace stretch {

namespace {

using rules::Rule;

constexpr uint64_t kMaxPartitionBytes = 2ull << 30;
const std::string kHost = "host";

[[noreturn]] void Fail(Rule r, const std::string& msg) { throw BundleError(r, msg); }

bool IsHex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

uint64_t Product(const std::vector<int64_t>& shape) {  // only after tensor-size: no overflow
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

bool Shares(const Slot& a, const Slot& b) {  // the same formula as stretchc.bundle.manifest.sharing_pairs
  return a.offset < b.offset + b.size && b.offset < a.offset + a.size;
}

// The processors (or delegates) of the runtime's backends (src/backends/registry.cc), in registry order.
std::vector<std::string> RegistryColumn(const char* backends::BackendInfo::*column) {
  std::vector<std::string> out;
  for (const auto& b : backends::All()) out.push_back(b.*column);
  return out;
}

}  // namespace

// The value sets the generated field checks leave to the runtime.

const std::vector<std::string>& manifest::KnownProcessor() {
  static const std::vector<std::string> kAll = RegistryColumn(&backends::BackendInfo::processor);
  return kAll;
}

const std::vector<std::string>& manifest::KnownDelegate() {
  static const std::vector<std::string> kAll = RegistryColumn(&backends::BackendInfo::delegate);
  return kAll;
}

namespace {

class Loader {
 public:
  Loader(const std::string& dir, bool load_files) : load_files_(load_files) { b_.dir = dir; }

  Bundle Load() {
    for (int r = 0; r < static_cast<int>(sizeof(rules::kRuleIds) / sizeof(rules::kRuleIds[0])); ++r) Check(static_cast<Rule>(r));
    Plan();
    return std::move(b_);
  }

 private:
  // The table's rules, dispatched in its order (a rule missing here is a -Wswitch warning).
  void Check(Rule r) {
    switch (r) {
      case Rule::kManifestFiles: return ManifestFiles();
      case Rule::kManifestSyntax: return ManifestSyntax();
      case Rule::kFormat: return Format();
      case Rule::kSchema: return Schema();
      case Rule::kJsonBinAgree: return;  // manifest.json is for people and tools; this runtime reads manifest.bin
      case Rule::kNames: return Names();
      case Rule::kReferences: return References();
      case Rule::kBindings: return Bindings();
      case Rule::kDelegate: return Delegate();
      case Rule::kPrecision: return Precision();
      case Rule::kTensorSize: return TensorSize();
      case Rule::kArena: return Arena();
      case Rule::kIoLayout: return IoLayout();
      case Rule::kSyncQuant: return SyncQuant();
      case Rule::kConversions: return Conversions();
      case Rule::kScheduleCover: return ScheduleCover();
      case Rule::kDataflowCycle: return DataflowCycle();
      case Rule::kScheduleOrder: return ScheduleOrder();
      case Rule::kSlotOverlap: return SlotOverlap();
      case Rule::kAliases: return Aliases();
      case Rule::kPartitionFiles: return PartitionFiles();
      case Rule::kSha256sums: return Sha256Sums();
      case Rule::kPartitionTensors: return;  // checked by Runtime when it binds each partition's model
    }
  }

  // ---------------------------------------------------------------- files, syntax, format, schema

  void ManifestFiles() {
    char rbuf[PATH_MAX];
    struct stat st;
    if (stat(b_.dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || realpath(b_.dir.c_str(), rbuf) == nullptr)
      Fail(Rule::kManifestFiles, "bundle directory '" + b_.dir + "' does not exist");
    root_ = rbuf;
    for (const char* name : {"manifest.json", "manifest.bin"}) {
      std::string path = b_.dir + "/" + name;
      if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) Fail(Rule::kManifestFiles, std::string("no ") + name + " in the bundle (or it is not a regular file)");
      if (static_cast<uint64_t>(st.st_size) > rules::kManifestBytes)
        Fail(Rule::kManifestFiles, std::string(name) + " is larger than " + std::to_string(rules::kManifestBytes) + " bytes");
    }
    if (!ReadFile(b_.dir + "/manifest.bin", &data_, rules::kManifestBytes)) Fail(Rule::kManifestFiles, "cannot read manifest.bin");
  }

  // The flatbuffer verifies, then decodes into the manifest structs (what the Python codec reads, it reads).
  void ManifestSyntax() {
    const char* id = manifest::fbs::ManifestIdentifier();
    if (data_.size() < 8 || std::string(reinterpret_cast<const char*>(data_.data()) + 4, 4) != id)
      Fail(Rule::kManifestSyntax, std::string("manifest.bin is not a stretchc manifest (file identifier is not ") + id + ")");
    flatbuffers::Verifier v(data_.data(), data_.size(), /*max_depth=*/32, /*max_tables=*/1000000);
    if (!manifest::fbs::VerifyManifestBuffer(v)) Fail(Rule::kManifestSyntax, "manifest.bin is corrupt (flatbuffer verification failed)");
    try {
      manifest::Decode(*manifest::fbs::GetManifest(data_.data()), "", &b_);
    } catch (const manifest::Malformed& e) {
      Fail(Rule::kManifestSyntax, std::string("manifest.bin: ") + e.what());
    }
  }

  void Format() {
    if (b_.format != manifest::kManifestFormat)
      Fail(Rule::kFormat, std::string("not a stretchc bundle manifest (format is not ") + manifest::kManifestFormat + ")");
    if (b_.format_version != manifest::kManifestFormatVersion)
      Fail(Rule::kFormat, "unknown format version " + std::to_string(b_.format_version) + " (this runtime reads version " +
                              std::to_string(manifest::kManifestFormatVersion) + ")");
  }

  void Schema() {
    try {
      manifest::Check(b_, "");
    } catch (const manifest::FieldError& e) {
      Fail(Rule::kSchema, std::string("manifest field ") + e.what());
    }
  }

  // ---------------------------------------------------------------- names, references, bindings, delegate

  void Names() {
    auto unique = [](const char* what, const auto& items) {
      std::set<std::string> seen;
      for (auto& x : items)
        if (!seen.insert(x.name).second) Fail(Rule::kNames, std::string(what) + " '" + x.name.substr(0, 64) + "' is listed twice");
    };
    unique("partition", b_.partitions);
    unique("sync point", b_.sync_points);
    unique("buffer slot", b_.buffers.slots);
    unique("model input", b_.inputs);
    unique("model output", b_.outputs);
    for (size_t i = 0; i < b_.partitions.size(); ++i) {
      if (b_.partitions[i].name == kHost) Fail(Rule::kNames, "a partition may not be named 'host'");
      part_[b_.partitions[i].name] = static_cast<int>(i);
    }
    for (size_t i = 0; i < b_.sync_points.size(); ++i) sync_[b_.sync_points[i].name] = static_cast<int>(i);
    for (size_t i = 0; i < b_.buffers.slots.size(); ++i) slot_[b_.buffers.slots[i].name] = static_cast<int>(i);
  }

  int PartOrHost(const std::string& n) const { return n == kHost ? -1 : part_.at(n); }

  // The indexes of the partitions `names` lists, or fail references.
  std::vector<int> Partitions(const std::vector<std::string>& names) const {
    std::vector<int> out;
    for (auto& n : names) {
      if (!part_.count(n)) Fail(Rule::kReferences, "the schedule names unknown partition '" + n.substr(0, 64) + "'");
      out.push_back(part_.at(n));
    }
    return out;
  }

  void References() {
    auto known_part = [&](const std::string& n) { return n == kHost || part_.count(n); };
    for (auto& sp : b_.sync_points) {
      if (!slot_.count(sp.slot)) Fail(Rule::kReferences, "sync point " + sp.name + " names unknown slot " + sp.slot);
      b_.sync_slot.push_back(slot_.at(sp.slot));
      if (!known_part(sp.producer)) Fail(Rule::kReferences, "sync point " + sp.name + " names unknown partition '" + sp.producer.substr(0, 64) + "'");
      for (auto& c : sp.consumers)
        if (!known_part(c)) Fail(Rule::kReferences, "sync point " + sp.name + " names unknown partition '" + c.substr(0, 64) + "'");
      b_.sync_producer.push_back(PartOrHost(sp.producer));
    }
    b_.plans.resize(b_.partitions.size());
    for (size_t p = 0; p < b_.partitions.size(); ++p) {
      const auto& q = b_.partitions[p];
      for (auto [list, out] : {std::make_pair(&q.inputs, &b_.plans[p].input_syncs), std::make_pair(&q.outputs, &b_.plans[p].output_syncs)})
        for (auto& x : *list) {
          if (!sync_.count(x.sync)) Fail(Rule::kReferences, "partition " + q.name + " names unknown sync point " + x.sync);
          out->push_back(sync_.at(x.sync));
        }
    }
    for (auto [list, out] : {std::make_pair(&b_.inputs, &b_.input_sync), std::make_pair(&b_.outputs, &b_.output_sync)})
      for (auto& io : *list) {
        if (!sync_.count(io.sync)) Fail(Rule::kReferences, "model tensor '" + io.name.substr(0, 64) + "' names unknown sync point " + io.sync);
        out->push_back(sync_.at(io.sync));
      }
    for (auto& a : b_.buffers.aliases)
      for (auto* n : {&a.a, &a.b})
        if (!slot_.count(*n)) Fail(Rule::kReferences, "buffer alias names unknown slot '" + n->substr(0, 64) + "'");
    for (auto& lane : b_.schedule.lanes) b_.lanes.push_back(Partitions(lane.partitions));
    for (auto& step : b_.schedule.steps) b_.steps.push_back(Partitions(step.partitions));
  }

  static bool Has(const std::vector<manifest::Binding>& list, const std::string& sync) {
    for (auto& x : list)
      if (x.sync == sync) return true;
    return false;
  }

  void Bindings() {
    for (size_t pi = 0; pi < b_.partitions.size(); ++pi) {
      const auto& q = b_.partitions[pi];
      std::set<std::string> tensors;
      for (bool input : {true, false}) {
        std::set<std::string> bound;
        const auto& list = input ? q.inputs : q.outputs;
        for (size_t k = 0; k < list.size(); ++k) {
          const auto& x = list[k];
          if (!tensors.insert(x.tensor).second) Fail(Rule::kBindings, "partition " + q.name + " binds tensor '" + x.tensor.substr(0, 64) + "' twice");
          if (!bound.insert(x.sync).second) Fail(Rule::kBindings, "partition " + q.name + " binds sync point " + x.sync + " twice");
          const auto& sp = b_.sync_points[(input ? b_.plans[pi].input_syncs : b_.plans[pi].output_syncs)[k]];
          if (input && std::find(sp.consumers.begin(), sp.consumers.end(), q.name) == sp.consumers.end())
            Fail(Rule::kBindings, "partition " + q.name + " reads sync point " + sp.name + " but is not among its consumers");
          if (input && sp.producer == q.name) Fail(Rule::kBindings, "partition " + q.name + " reads its own output " + sp.name);
          if (!input && sp.producer != q.name)
            Fail(Rule::kBindings, "partition " + q.name + " writes sync point " + sp.name + " whose producer is " + sp.producer);
        }
      }
    }
    std::set<std::string> model_in, model_out;
    for (auto& io : b_.inputs) model_in.insert(io.sync);
    for (auto& io : b_.outputs) model_out.insert(io.sync);
    std::map<std::string, std::string> slot_owner;
    for (size_t s = 0; s < b_.sync_points.size(); ++s) {
      const auto& sp = b_.sync_points[s];
      if (std::set<std::string>(sp.consumers.begin(), sp.consumers.end()).size() != sp.consumers.size())
        Fail(Rule::kBindings, "sync point " + sp.name + " lists a consumer twice");
      if (b_.sync_producer[s] >= 0 && !Has(b_.partitions[b_.sync_producer[s]].outputs, sp.name))
        Fail(Rule::kBindings, "sync point " + sp.name + ": its producer " + sp.producer + " does not write it (nothing produces it)");
      for (auto& c : sp.consumers)
        if (c != kHost && !Has(b_.partitions[part_.at(c)].inputs, sp.name))
          Fail(Rule::kBindings, "sync point " + sp.name + ": its consumer " + c + " does not read it");
      bool from_host = b_.sync_producer[s] < 0, is_in = model_in.count(sp.name) > 0;
      if (from_host != is_in)
        Fail(Rule::kBindings, from_host ? "sync point " + sp.name + " is produced by the host but is no model input"
                                        : "sync point " + sp.name + " carries a model input but is not produced by the host");
      bool to_host = std::find(sp.consumers.begin(), sp.consumers.end(), kHost) != sp.consumers.end(), is_out = model_out.count(sp.name) > 0;
      if (to_host != is_out)
        Fail(Rule::kBindings, to_host ? "sync point " + sp.name + " is consumed by the host but is no model output"
                                      : "sync point " + sp.name + " carries a model output but the host does not consume it");
      auto owner = slot_owner.emplace(sp.slot, sp.name);
      if (!owner.second) Fail(Rule::kBindings, "sync points " + owner.first->second + " and " + sp.name + " share slot " + sp.slot);
    }
  }

  void Delegate() {
    for (auto& q : b_.partitions) {
      if (backends::ByProcessor(q.processor)->delegate != q.delegate)
        Fail(Rule::kDelegate, "partition " + q.name + ": delegate " + q.delegate + " does not match processor " + q.processor);
      const backends::BackendInfo* fb = q.fallback ? backends::ByProcessor(q.fallback->processor) : nullptr;
      if (fb && (!fb->fallback_target || fb->delegate != q.fallback->delegate))
        Fail(Rule::kDelegate, "partition " + q.name + ": the fallback " + q.fallback->processor + "/" + q.fallback->delegate + " is not a fallback backend");
    }
  }

  void Precision() {
    for (auto& q : b_.partitions) {
      const auto& runs = backends::ByProcessor(q.processor)->precisions;
      if (!runs.empty() && std::find(runs.begin(), runs.end(), q.precision) == runs.end())
        Fail(Rule::kPrecision, "partition " + q.name + ": processor " + q.processor + " does not run " + q.precision);
    }
  }

  // ---------------------------------------------------------------- sizes, arena, layouts

  // Bytes of a dense tensor, or fail tensor-size (rank, dimensions, total), computed without overflow.
  static uint64_t TensorBytes(const std::vector<int64_t>& shape, const std::string& dtype, const std::string& what) {
    if (shape.size() > rules::kRank) Fail(Rule::kTensorSize, what + ": rank " + std::to_string(shape.size()) + " is above " + std::to_string(rules::kRank));
    for (int64_t d : shape)
      if (static_cast<uint64_t>(d) > rules::kDim) Fail(Rule::kTensorSize, what + ": dimension " + std::to_string(d) + " is above " + std::to_string(rules::kDim));
    uint64_t n = DtypeSize(dtype);
    if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
    for (int64_t d : shape) {
      if (n > rules::kTensorBytes / static_cast<uint64_t>(d)) Fail(Rule::kTensorSize, what + ": more than " + std::to_string(rules::kTensorBytes) + " bytes");
      n *= static_cast<uint64_t>(d);
    }
    if (n > rules::kTensorBytes) Fail(Rule::kTensorSize, what + ": more than " + std::to_string(rules::kTensorBytes) + " bytes");
    return n;
  }

  void TensorSize() {
    for (auto& sl : b_.buffers.slots) TensorBytes(sl.shape, sl.dtype, "buffer slot " + sl.name);
    for (bool input : {true, false})
      for (auto& io : input ? b_.inputs : b_.outputs) {
        std::string what = std::string("model ") + (input ? "input " : "output ") + io.name.substr(0, 64);
        TensorBytes(io.shape, io.dtype, what);
        TensorBytes(io.bundle_shape, io.bundle_dtype, what);
      }
    for (auto& sl : b_.buffers.slots) {
      uint64_t need = TensorBytes(sl.shape, sl.dtype, "buffer slot " + sl.name);
      if (static_cast<uint64_t>(sl.size) < need)
        Fail(Rule::kTensorSize, "buffer slot " + sl.name + " is smaller (" + std::to_string(sl.size) + " bytes) than its tensor (" + std::to_string(need) + ")");
    }
  }

  void Arena() {  // sizes and offsets are >= 0 (schema)
    const manifest::Buffers& b = b_.buffers;
    if (static_cast<uint64_t>(b.arena_size) > rules::kArenaBytes)
      Fail(Rule::kArena, "arena size " + std::to_string(b.arena_size) + " is above " + std::to_string(rules::kArenaBytes) + " bytes");
    for (auto& sl : b.slots) {
      if (sl.offset % b.alignment)
        Fail(Rule::kArena, "buffer slot " + sl.name + " is not " + std::to_string(b.alignment) + "-byte aligned (offset " + std::to_string(sl.offset) + ")");
      if (sl.offset > b.arena_size || sl.size > b.arena_size - sl.offset)
        Fail(Rule::kArena, "buffer slot " + sl.name + " lies outside the arena (" + std::to_string(sl.offset) + " + " + std::to_string(sl.size) + " > " +
                               std::to_string(b.arena_size) + ")");
    }
  }

  void IoLayout() {
    for (bool input : {true, false})
      for (size_t k = 0; k < (input ? b_.inputs : b_.outputs).size(); ++k) {
        const manifest::ModelIO& io = (input ? b_.inputs : b_.outputs)[k];
        const std::string what = std::string("model ") + (input ? "input " : "output ") + io.name.substr(0, 64);
        auto fail = [&](const std::string& why) { Fail(Rule::kIoLayout, what + ": " + why); };
        if ((io.layout == "NCHW") != io.perm.has_value()) fail("layout " + io.layout + (io.perm ? " takes no perm" : " needs perm"));
        if (io.perm) {
          const std::vector<int64_t>& perm = *io.perm;
          size_t rank = io.shape.size();
          if (perm.size() != rank || io.bundle_shape.size() != rank) fail("perm is not a permutation of its dimensions");
          std::vector<bool> seen(rank, false);
          for (int64_t p : perm) {
            if (p < 0 || p >= static_cast<int64_t>(rank) || seen[p]) fail("perm is not a permutation of its dimensions");
            seen[p] = true;
          }
          for (size_t i = 0; i < rank; ++i)
            if (io.bundle_shape[i] != io.shape[perm[i]]) fail("bundle_shape is not shape permuted by perm");
        }
        if (io.layout == "as-is" && io.bundle_shape != io.shape) fail("layout as-is but bundle_shape is not shape");
        if (Product(io.shape) != Product(io.bundle_shape)) fail("shape and bundle_shape have different element counts");
        if (!io.quant && io.dtype != io.bundle_dtype) fail("dtype " + io.dtype + " differs from bundle dtype " + io.bundle_dtype + " without quantization");
        if (io.quant) {
          if (io.quant->scale.size() != 1 || io.quant->zero_point.size() != 1) fail("only per-tensor quantization is supported at the model boundary");
          if (!(io.quant->scale[0] > 0)) fail("quantization scale must be positive and finite");
        }
        const Slot& sl = b_.SlotOfSync((input ? b_.input_sync : b_.output_sync)[k]);
        if (sl.dtype != io.bundle_dtype || sl.shape != io.bundle_shape) fail("slot " + sl.name + " does not hold its bundle tensor");
      }
  }

  // ---------------------------------------------------------------- 8-bit sync points and conversions

  void SyncQuant() {
    for (size_t s = 0; s < b_.sync_points.size(); ++s) {
      const manifest::SyncPoint& sp = b_.sync_points[s];
      const Slot& sl = b_.SlotOfSync(static_cast<int>(s));
      bool eight_bit = sl.dtype == "int8" || sl.dtype == "uint8";
      if (sp.quant.has_value() != eight_bit)
        Fail(Rule::kSyncQuant, "sync point " + sp.name + ": slot " + sl.name + " is " + sl.dtype + (eight_bit ? " without" : " with") + " quantization");
      if (!sp.quant) continue;
      const manifest::Quant& q = *sp.quant;
      if (q.scale.size() != 1 || q.zero_point.size() != 1 || !(q.scale[0] > 0))
        Fail(Rule::kSyncQuant, "sync point " + sp.name + ": quantization must be one positive scale and one zero point");
      int64_t lo = sl.dtype == "int8" ? -128 : 0, hi = sl.dtype == "int8" ? 127 : 255;
      if (q.zero_point[0] < lo || q.zero_point[0] > hi)
        Fail(Rule::kSyncQuant, "sync point " + sp.name + ": zero point " + std::to_string(q.zero_point[0]) + " is outside " + sl.dtype);
    }
  }

  void Conversions() {
    for (size_t s = 0; s < b_.sync_points.size(); ++s) {
      const manifest::SyncPoint& sp = b_.sync_points[s];
      const std::string& dtype = b_.SlotOfSync(static_cast<int>(s)).dtype;
      for (auto& cv : sp.conversions) {
        // A requantization (an 8-bit tensor into another scale of its dtype) keeps the dtype: only a consumer's QUANTIZE.
        bool requantizes = cv.op == "QUANTIZE" && (cv.from_dtype == "int8" || cv.from_dtype == "uint8") &&
                           std::find(sp.consumers.begin(), sp.consumers.end(), cv.partition) != sp.consumers.end();
        if (cv.from_dtype == cv.to_dtype && !requantizes)
          Fail(Rule::kConversions, "sync point " + sp.name + ": conversion " + cv.op + " does not change the dtype");
        bool by_producer = cv.partition == sp.producer && cv.to_dtype == dtype;
        bool by_consumer = cv.from_dtype == dtype && std::find(sp.consumers.begin(), sp.consumers.end(), cv.partition) != sp.consumers.end();
        if (!by_producer && !by_consumer)
          Fail(Rule::kConversions, "sync point " + sp.name + ": conversion in " + cv.partition + " is neither its producer's into " + dtype +
                                       " nor a consumer's from it");
      }
    }
  }

  // ---------------------------------------------------------------- schedule and liveness

  // (producer, consumer, sync) for every partition-to-partition dependency.
  std::vector<std::tuple<int, int, int>> Edges() const {
    std::vector<std::tuple<int, int, int>> out;
    for (size_t s = 0; s < b_.sync_points.size(); ++s) {
      if (b_.sync_producer[s] < 0) continue;
      for (auto& c : b_.sync_points[s].consumers)
        if (c != kHost) out.emplace_back(b_.sync_producer[s], part_.at(c), static_cast<int>(s));
    }
    return out;
  }

  void ScheduleCover() {
    std::vector<int> in_lane(b_.partitions.size(), 0), in_step(b_.partitions.size(), 0);
    std::set<std::pair<std::string, int64_t>> lanes_seen;
    for (size_t l = 0; l < b_.lanes.size(); ++l) {
      const std::string& processor = b_.schedule.lanes[l].processor;
      const int64_t index = b_.schedule.lanes[l].index;
      if (!lanes_seen.insert({processor, index}).second)
        Fail(Rule::kScheduleCover, "the schedule has two lanes " + std::to_string(index) + " for processor " + processor);
      for (int p : b_.lanes[l]) {
        const manifest::Partition& q = b_.partitions[p];
        if (q.processor != processor) Fail(Rule::kScheduleCover, "partition " + q.name + " (" + q.processor + ") is on the " + processor + " lane");
        ++in_lane[p];
        b_.plans[p].lane = static_cast<int>(l);
      }
    }
    for (size_t k = 0; k < b_.steps.size(); ++k)
      for (int p : b_.steps[k]) {
        ++in_step[p];
        b_.plans[p].step = static_cast<int>(k);
      }
    for (size_t p = 0; p < b_.partitions.size(); ++p)
      if (in_lane[p] != 1 || in_step[p] != 1)
        Fail(Rule::kScheduleCover, "the schedule does not list partition " + b_.partitions[p].name + " exactly once (lanes " +
                                       std::to_string(in_lane[p]) + ", steps " + std::to_string(in_step[p]) + ")");
  }

  void DataflowCycle() {
    size_t n = b_.partitions.size();
    std::vector<std::vector<int>> succ(n);
    std::vector<int> indegree(n, 0);
    for (auto& [a, c, s] : Edges()) {
      succ[a].push_back(c);
      ++indegree[c];
    }
    std::vector<int> ready;
    for (size_t p = 0; p < n; ++p)
      if (indegree[p] == 0) ready.push_back(static_cast<int>(p));
    size_t done = 0;
    while (!ready.empty()) {
      int p = ready.back();
      ready.pop_back();
      ++done;
      for (int c : succ[p])
        if (--indegree[c] == 0) ready.push_back(c);
    }
    if (done != n) {
      std::string left;
      for (size_t p = 0; p < n; ++p)
        if (indegree[p] > 0) left += (left.empty() ? "" : ", ") + b_.partitions[p].name;
      Fail(Rule::kDataflowCycle, "partitions depend on themselves through sync points: " + left);
    }
  }

  void ScheduleOrder() {
    auto step = [&](int p) { return b_.plans[p].step; };
    for (auto& [a, c, s] : Edges())
      if (step(a) >= step(c))
        Fail(Rule::kScheduleOrder, "partition " + b_.partitions[c].name + " (step " + std::to_string(step(c)) + ") reads " + b_.sync_points[s].name +
                                       " produced by " + b_.partitions[a].name + " at step " + std::to_string(step(a)));
    for (size_t l = 0; l < b_.lanes.size(); ++l) {
      const std::vector<int>& lane = b_.lanes[l];
      for (size_t i = 1; i < lane.size(); ++i)
        if (step(lane[i - 1]) > step(lane[i]))
          Fail(Rule::kScheduleOrder, "lane " + LaneName(b_.schedule.lanes[l]) + " runs " + b_.partitions[lane[i - 1]].name + " before " +
                                         b_.partitions[lane[i]].name + ": not in step order");
    }
  }

  void SlotOverlap() {
    size_t n = b_.partitions.size();
    // anc[p][q]: q finishes before p starts, through sync points (steps order producers first: schedule-order)
    std::vector<std::vector<bool>> anc(n, std::vector<bool>(n, false));
    std::vector<std::vector<int>> preds(n);
    for (auto& [a, c, s] : Edges()) preds[c].push_back(a);
    for (auto& step : b_.steps)
      for (int p : step)
        for (int a : preds[p]) {
          anc[p][a] = true;
          for (size_t q = 0; q < n; ++q)
            if (anc[a][q]) anc[p][q] = true;
        }
    const std::vector<Slot>& slots = b_.buffers.slots;
    std::vector<int> sync_of_slot(slots.size(), -1);
    for (size_t s = 0; s < b_.sync_points.size(); ++s) sync_of_slot[b_.sync_slot[s]] = static_cast<int>(s);
    auto before = [&](int x, int y) {  // every read of sync point x is over before sync point y is written
      int producer = b_.sync_producer[y];
      if (producer < 0) return false;
      for (auto& c : b_.sync_points[x].consumers)
        if (c == kHost || !anc[producer][part_.at(c)]) return false;
      return true;
    };
    for (size_t i = 0; i < slots.size(); ++i)
      for (size_t j = i + 1; j < slots.size(); ++j) {
        int x = sync_of_slot[i], y = sync_of_slot[j];
        if (!Shares(slots[i], slots[j]) || x < 0 || y < 0) continue;
        if (!before(x, y) && !before(y, x))
          Fail(Rule::kSlotOverlap, "buffer slots " + slots[i].name + " and " + slots[j].name + " share arena bytes while both are live (" +
                                       b_.sync_points[x].name + " and " + b_.sync_points[y].name + ")");
      }
  }

  void Aliases() {
    std::set<std::pair<std::string, std::string>> listed, actual;
    for (auto& a : b_.buffers.aliases) {
      auto pair = std::minmax(a.a, a.b);
      if (pair.first == pair.second || !listed.insert(pair).second) Fail(Rule::kAliases, "buffers.aliases lists a pair twice or a slot with itself");
    }
    const std::vector<Slot>& slots = b_.buffers.slots;
    for (size_t i = 0; i < slots.size(); ++i)
      for (size_t j = i + 1; j < slots.size(); ++j)
        if (Shares(slots[i], slots[j])) actual.insert(std::minmax(slots[i].name, slots[j].name));
    if (listed != actual) Fail(Rule::kAliases, "buffers.aliases does not list exactly the slots that share bytes");
  }

  // ---------------------------------------------------------------- files

  // A bundle-relative path as a regular file inside the bundle (symlinks followed), or fail `rule`.
  std::string Inside(Rule rule, const std::string& rel, const std::string& what) const {
    auto bad = [&](const char* why) { Fail(rule, what + " path '" + rel.substr(0, 128) + "' " + why); };
    if (rel.empty()) bad("is empty");
    if (rel.size() > rules::kPathChars) bad("is too long");
    if (rel[0] == '/') bad("is absolute (points outside the bundle)");
    for (char c : rel)
      if (c == '\\' || static_cast<unsigned char>(c) < 0x20) bad("contains a backslash or control character");
    size_t start = 0;
    for (;;) {
      size_t end = rel.find('/', start);
      std::string part = rel.substr(start, end == std::string::npos ? std::string::npos : end - start);
      if (part.empty() || part == "." || part == "..") bad("has an empty, '.' or '..' component (points outside the bundle)");
      if (end == std::string::npos) break;
      start = end + 1;
    }
    std::string full = b_.dir + "/" + rel;
    char buf[PATH_MAX];
    if (realpath(full.c_str(), buf) == nullptr) {
      // realpath fails for a missing file and for a dangling link alike; say which
      struct stat lst;
      bad(lstat(full.c_str(), &lst) == 0 ? "resolves outside the bundle" : "does not exist");
    }
    std::string real(buf);
    if (real.compare(0, root_.size() + 1, root_ + "/") != 0) bad("resolves outside the bundle");
    struct stat st;
    if (stat(real.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) bad("is not a regular file");
    return real;
  }

  std::string FileSha(Rule rule, const std::string& real, std::vector<uint8_t>* keep = nullptr) {
    auto it = sha_.find(real);
    if (it != sha_.end() && keep == nullptr) return it->second;
    std::vector<uint8_t> bytes;
    if (!ReadFile(real, &bytes, kMaxPartitionBytes)) Fail(rule, "cannot read " + real);
    std::string sha = Sha256Hex(bytes.data(), bytes.size());
    sha_[real] = sha;
    if (keep) *keep = std::move(bytes);
    return sha;
  }

  void PartitionFiles() {
    for (size_t p = 0; p < b_.partitions.size(); ++p) {
      const manifest::Partition& q = b_.partitions[p];
      PartitionPlan& plan = b_.plans[p];
      std::string real = Inside(Rule::kPartitionFiles, q.file, "partition " + q.name + " file");
      std::vector<uint8_t> bytes;
      if (FileSha(Rule::kPartitionFiles, real, &bytes) != q.sha256)
        Fail(Rule::kPartitionFiles, "partition file " + q.file + " was modified (sha256 mismatch)");
      if (q.fallback) {
        std::string freal = Inside(Rule::kPartitionFiles, q.fallback->file, "partition " + q.name + " fallback file");
        if (load_files_ && freal != real && !ReadFile(freal, &plan.fallback_bytes, kMaxPartitionBytes))
          Fail(Rule::kPartitionFiles, "fallback file " + q.fallback->file + " is unreadable");
      }
      if (load_files_) plan.bytes = std::move(bytes);
    }
  }

  void Sha256Sums() {
    const std::string path = b_.dir + "/SHA256SUMS";
    struct stat st;
    std::vector<uint8_t> raw;
    if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) > rules::kSha256sumsBytes ||
        !ReadFile(path, &raw, rules::kSha256sumsBytes))
      Fail(Rule::kSha256sums, "no SHA256SUMS in the bundle, or it is larger than " + std::to_string(rules::kSha256sumsBytes) + " bytes");
    std::string text(raw.begin(), raw.end());
    if (!manifest::ValidUtf8(text) || text.find('\0') != std::string::npos) Fail(Rule::kSha256sums, "SHA256SUMS is not UTF-8 text");
    std::map<std::string, std::string> listed;
    size_t start = 0, line_no = 0;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      std::string line = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
      start = end == std::string::npos ? text.size() : end + 1;
      ++line_no;
      if (line.size() < 67 || !IsHex64(line.substr(0, 64)) || line.compare(64, 2, "  ") != 0)
        Fail(Rule::kSha256sums, "SHA256SUMS line " + std::to_string(line_no) + " is not '<sha256>  <path>'");
      std::string rel = line.substr(66);
      if (!listed.emplace(rel, line.substr(0, 64)).second) Fail(Rule::kSha256sums, "SHA256SUMS lists " + rel.substr(0, 128) + " twice");
      if (FileSha(Rule::kSha256sums, Inside(Rule::kSha256sums, rel, "SHA256SUMS entry")) != line.substr(0, 64))
        Fail(Rule::kSha256sums, rel.substr(0, 128) + " was modified (sha256 differs from SHA256SUMS)");
    }
    std::vector<std::string> need = {"manifest.json", "manifest.bin"};
    for (auto& q : b_.partitions) {
      need.push_back(q.file);
      if (q.fallback) need.push_back(q.fallback->file);
    }
    for (auto& rel : need)
      if (!listed.count(rel)) Fail(Rule::kSha256sums, "SHA256SUMS does not list " + rel);
  }

  // ---------------------------------------------------------------- the runtime's plan

  // Dependencies: producers of inputs, plus earlier readers of any slot whose bytes this partition overwrites.
  void Plan() {
    for (size_t pi = 0; pi < b_.partitions.size(); ++pi) {
      PartitionPlan& plan = b_.plans[pi];
      auto add = [&](int d, int sync) {
        if (d < 0 || d == static_cast<int>(pi)) return;
        for (size_t k = 0; k < plan.deps.size(); ++k)
          if (plan.deps[k] == d) {
            if (plan.dep_sync[k] < 0) plan.dep_sync[k] = sync;
            return;
          }
        plan.deps.push_back(d);
        plan.dep_sync.push_back(sync);
      };
      for (int s : plan.input_syncs) add(b_.sync_producer[s], s);
      for (int s : plan.output_syncs) {
        const Slot& mine = b_.SlotOfSync(s);
        for (size_t o = 0; o < b_.sync_points.size(); ++o) {
          const Slot& other = b_.SlotOfSync(static_cast<int>(o));
          if (&other == &mine || !Shares(mine, other)) continue;
          for (auto& c : b_.sync_points[o].consumers)
            if (c != kHost && b_.plans[part_.at(c)].step < plan.step) add(part_.at(c), -1);
        }
      }
    }
  }

  Bundle b_;
  bool load_files_;
  std::string root_;  // the bundle directory, resolved
  std::vector<uint8_t> data_;
  std::map<std::string, int> part_, sync_, slot_;
  std::map<std::string, std::string> sha_;  // resolved path -> sha256
};

}  // namespace

size_t DtypeSize(const std::string& d) {
  for (const auto& t : rules::kDtypes)
    if (d == t.name) return t.size;
  return 0;
}

bool ReadFile(const std::string& path, std::vector<uint8_t>* out, uint64_t max_bytes) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  out->clear();
  uint8_t buf[1 << 16];
  size_t n;
  bool ok = true;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
    if (out->size() + n > max_bytes) { ok = false; break; }
    out->insert(out->end(), buf, buf + n);
  }
  if (std::ferror(f)) ok = false;
  std::fclose(f);
  return ok;
}

Bundle LoadBundle(const std::string& dir, bool load_files) { return Loader(dir, load_files).Load(); }

}  // namespace stretch
