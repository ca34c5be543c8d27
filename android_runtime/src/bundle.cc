#include "bundle.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <set>
#include <sstream>

#include <sys/stat.h>

#include "generated/manifest_generated.h"
#include "sha256.h"

namespace fbs = stretchc::bundle::fbs;

namespace stretch {

namespace {

constexpr uint64_t kMaxManifestBytes = 16ull << 20;
constexpr uint64_t kMaxPartitionBytes = 2ull << 30;
constexpr uint64_t kMaxArenaBytes = 4ull << 30;
constexpr int kMaxRank = 8;
constexpr int kInfStep = INT_MAX;

[[noreturn]] void Fail(const std::string& msg) { throw BundleError(msg); }

bool ValidUtf8(const std::string& s) {
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

std::string Str(const flatbuffers::String* s, const char* what) {
  if (s == nullptr) Fail(std::string("manifest field ") + what + " is missing");
  std::string out(s->c_str(), s->size());
  if (out.find('\0') != std::string::npos) Fail(std::string("manifest field ") + what + " contains a NUL byte");
  if (!ValidUtf8(out)) Fail(std::string("manifest field ") + what + " is not valid UTF-8");
  return out;
}

bool ValidName(const std::string& s) {
  if (s.empty() || s.size() > 256) return false;
  for (char c : s)
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '+' || c == '-')) return false;
  return true;
}

std::string Name(const flatbuffers::String* s, const char* what) {
  std::string n = Str(s, what);
  if (!ValidName(n)) Fail(std::string("manifest field ") + what + " is not a valid name: '" + n.substr(0, 64) + "'");
  return n;
}

std::vector<int64_t> Ints(const flatbuffers::Vector<int64_t>* v) {
  std::vector<int64_t> out;
  if (v) out.assign(v->begin(), v->end());
  return out;
}

std::vector<std::string> Strs(const flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>* v, const char* what) {
  std::vector<std::string> out;
  if (v)
    for (auto s : *v) out.push_back(Str(s, what));
  return out;
}

bool IsHex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// Byte count of a dense tensor; fails on negative dims, too high a rank or overflow.
uint64_t TensorBytes(const std::vector<int64_t>& shape, const std::string& dtype, const std::string& what) {
  size_t es = DtypeSize(dtype);
  if (es == 0) Fail(what + ": unknown dtype '" + dtype.substr(0, 32) + "'");
  if (shape.size() > kMaxRank) Fail(what + ": rank " + std::to_string(shape.size()) + " is above " + std::to_string(kMaxRank));
  uint64_t n = es;
  for (int64_t d : shape) {
    if (d < 0 || d > (1ll << 32)) Fail(what + ": bad dimension " + std::to_string(d));
    if (d != 0 && n > kMaxArenaBytes / static_cast<uint64_t>(d)) Fail(what + ": tensor is too large");
    n *= static_cast<uint64_t>(d);
  }
  return n;
}

// A bundle-relative path: no absolute paths, no "..", no backslashes, no empty or hidden-escape parts, and
// once resolved (symlinks followed) it must still lie inside the bundle directory.
std::string InsidePath(const std::string& bundle_real, const std::string& dir, const std::string& rel, const char* what) {
  auto bad = [&](const char* why) {
    Fail(std::string(what) + " path '" + rel.substr(0, 128) + "' " + why);
  };
  if (rel.empty()) bad("is empty");
  if (rel.size() > 1024) bad("is too long");
  if (rel[0] == '/') bad("is absolute (points outside the bundle)");
  for (char c : rel)
    if (c == '\\' || static_cast<unsigned char>(c) < 0x20) bad("contains a backslash or control character");
  std::stringstream ss(rel);
  std::string part;
  while (std::getline(ss, part, '/')) {
    if (part.empty() || part == "." || part == "..") bad("has an empty, '.' or '..' component (points outside the bundle)");
  }
  if (rel.back() == '/') bad("ends with '/'");
  std::string full = dir + "/" + rel;
  char buf[PATH_MAX];
  if (realpath(full.c_str(), buf) == nullptr) bad("does not exist");
  std::string real(buf);
  if (real.compare(0, bundle_real.size() + 1, bundle_real + "/") != 0) bad("resolves outside the bundle");
  struct stat st;
  if (stat(real.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) bad("is not a regular file");
  return real;
}

}  // namespace

size_t DtypeSize(const std::string& d) {
  if (d == "float32" || d == "int32") return 4;
  if (d == "float16" || d == "int16") return 2;
  if (d == "int64") return 8;
  if (d == "int8" || d == "uint8" || d == "bool") return 1;
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

Bundle LoadBundle(const std::string& dir, bool load_files) {
  Bundle b;
  b.dir = dir;
  char rbuf[PATH_MAX];
  struct stat st;
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || realpath(dir.c_str(), rbuf) == nullptr)
    Fail("bundle directory '" + dir + "' does not exist");
  const std::string bundle_real(rbuf);

  // ---- the flatbuffer
  std::vector<uint8_t> data;
  const std::string mpath = dir + "/manifest.bin";
  if (stat(mpath.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) Fail("no manifest.bin in the bundle");
  if (!ReadFile(mpath, &data, kMaxManifestBytes)) Fail("manifest.bin is unreadable or larger than 16 MiB");
  if (data.size() < 8 || std::string(reinterpret_cast<const char*>(data.data()) + 4, 4) != "STRB")
    Fail("manifest.bin is not a stretchc manifest (file identifier is not STRB)");
  {
    flatbuffers::Verifier v(data.data(), data.size(), /*max_depth=*/32, /*max_tables=*/1000000);
    if (!fbs::VerifyManifestBuffer(v)) Fail("manifest.bin is corrupt (flatbuffer verification failed)");
  }
  const fbs::Manifest* m = fbs::GetManifest(data.data());
  if (Str(m->format(), "format") != "stretchc-bundle") Fail("not a stretchc bundle manifest (format is not stretchc-bundle)");
  if (m->format_version() != 1)
    Fail("unknown format version " + std::to_string(m->format_version()) + " (this runtime reads version 1)");
  if (!m->compiler() || !m->model()) Fail("manifest field compiler or model is missing");
  b.compiler_version = Str(m->compiler()->version(), "compiler.version");
  Str(m->compiler()->name(), "compiler.name");
  b.model_name = Str(m->model()->name(), "model.name");
  if (!IsHex64(Str(m->model()->source_sha256(), "model.source_sha256"))) Fail("manifest field model.source_sha256 is not a sha256");
  Str(m->model()->pipeline(), "model.pipeline");
  if (m->target()) {
    b.target_name = Str(m->target()->name(), "target.name");
    Str(m->target()->description(), "target.description");
  }
  if (m->predicted_latency()) { b.has_predicted_latency = true; b.predicted_latency_ms = m->predicted_latency()->ms(); }

  // ---- buffers
  if (!m->buffers()) Fail("manifest field buffers is missing");
  b.alignment = static_cast<uint64_t>(m->buffers()->alignment());
  if (m->buffers()->alignment() != 64) Fail("buffer alignment must be 64, not " + std::to_string(m->buffers()->alignment()));
  if (m->buffers()->arena_size() < 0 || static_cast<uint64_t>(m->buffers()->arena_size()) > kMaxArenaBytes)
    Fail("arena size " + std::to_string(m->buffers()->arena_size()) + " is negative or above 4 GiB");
  b.arena_size = static_cast<uint64_t>(m->buffers()->arena_size());
  std::map<std::string, int> slot_index;
  if (m->buffers()->slots())
    for (auto s : *m->buffers()->slots()) {
      Slot sl;
      sl.name = Name(s->name(), "slot.name");
      sl.dtype = Str(s->dtype(), "slot.dtype");
      sl.shape = Ints(s->shape());
      if (s->offset() < 0 || s->size() < 0) Fail("buffer slot " + sl.name + " has a negative offset or size");
      sl.offset = static_cast<uint64_t>(s->offset());
      sl.size = static_cast<uint64_t>(s->size());
      if (sl.offset % 64 != 0) Fail("buffer slot " + sl.name + " is not 64-byte aligned (offset " + std::to_string(sl.offset) + ")");
      if (sl.offset > b.arena_size || sl.size > b.arena_size - sl.offset)
        Fail("buffer slot " + sl.name + " lies outside the arena (offset " + std::to_string(sl.offset) + " + size " +
             std::to_string(sl.size) + " > " + std::to_string(b.arena_size) + ")");
      uint64_t need = TensorBytes(sl.shape, sl.dtype, "buffer slot " + sl.name);
      if (need > sl.size) Fail("buffer slot " + sl.name + " is smaller (" + std::to_string(sl.size) + " bytes) than its tensor (" + std::to_string(need) + ")");
      if (!slot_index.emplace(sl.name, static_cast<int>(b.slots.size())).second) Fail("buffer slot " + sl.name + " is listed twice");
      b.slots.push_back(sl);
    }

  if (m->buffers()->aliases())
    for (auto a : *m->buffers()->aliases()) {
      std::string x = Str(a->a(), "alias"), y = Str(a->b(), "alias");
      if (!slot_index.count(x) || !slot_index.count(y)) Fail("buffer alias names an unknown slot");
    }

  // ---- partitions
  std::map<std::string, int> part_index;
  if (!m->partitions() || m->partitions()->size() == 0) Fail("the manifest lists no partitions");
  for (auto p : *m->partitions()) {
    Partition q;
    q.name = Name(p->name(), "partition.name");
    if (q.name == "host") Fail("a partition may not be named 'host'");
    q.file = Str(p->file(), "partition.file");
    q.sha256 = Str(p->sha256(), "partition.sha256");
    if (!IsHex64(q.sha256)) Fail("partition " + q.name + ": sha256 is not 64 lower-case hex digits");
    q.processor = Str(p->processor(), "partition.processor");
    q.delegate = Str(p->delegate(), "partition.delegate");
    static const std::map<std::string, std::string> kDelegate = {{"cpu", "xnnpack"}, {"gpu", "gpu"}, {"dsp", "hexagon"}};
    auto it = kDelegate.find(q.processor);
    if (it == kDelegate.end()) Fail("partition " + q.name + ": unknown processor '" + q.processor.substr(0, 32) + "'");
    if (it->second != q.delegate) Fail("partition " + q.name + ": delegate '" + q.delegate.substr(0, 32) + "' does not match processor " + q.processor);
    if (p->delegate_options())
      for (auto o : *p->delegate_options()) {
        Option opt;
        std::string key = Str(o->key(), "delegate option key");
        switch (o->kind()) {
          case fbs::ValueKind::Null: opt.kind = Option::kNull; break;
          case fbs::ValueKind::Bool: opt.kind = Option::kBool; opt.b = o->bool_value(); break;
          case fbs::ValueKind::Int: opt.kind = Option::kInt; opt.i = o->int_value(); break;
          case fbs::ValueKind::Float: opt.kind = Option::kFloat; opt.f = o->float_value(); break;
          case fbs::ValueKind::String: opt.kind = Option::kString; opt.s = Str(o->string_value(), "delegate option"); break;
          case fbs::ValueKind::Json: opt.kind = Option::kJson; opt.s = Str(o->string_value(), "delegate option"); break;
          default: Fail("partition " + q.name + ": delegate option " + key + " has an unknown value kind");
        }
        q.delegate_options[key] = opt;
      }
    if (p->threads() < 1 || p->threads() > 64) Fail("partition " + q.name + ": threads " + std::to_string(p->threads()) + " is outside 1..64");
    q.threads = static_cast<int>(p->threads());
    for (int64_t c : Ints(p->affinity())) {
      if (c < 0 || c >= 1024) Fail("partition " + q.name + ": affinity core " + std::to_string(c) + " is outside 0..1023");
      q.affinity.push_back(static_cast<int>(c));
    }
    if (p->fallback()) {
      q.has_fallback = true;
      q.fallback_processor = Str(p->fallback()->processor(), "fallback.processor");
      q.fallback_delegate = Str(p->fallback()->delegate(), "fallback.delegate");
      q.fallback_file = Str(p->fallback()->file(), "fallback.file");
      if (q.fallback_processor != "cpu" || q.fallback_delegate != "xnnpack")
        Fail("partition " + q.name + ": the fallback must be cpu/xnnpack");
    }
    q.regions = Strs(p->regions(), "partition.regions");
    if (p->inputs())
      for (auto x : *p->inputs()) q.inputs.push_back({Str(x->tensor(), "binding.tensor"), Name(x->sync(), "binding.sync")});
    if (p->outputs())
      for (auto x : *p->outputs()) q.outputs.push_back({Str(x->tensor(), "binding.tensor"), Name(x->sync(), "binding.sync")});
    if (q.outputs.empty()) Fail("partition " + q.name + " has no outputs");
    if (!part_index.emplace(q.name, static_cast<int>(b.partitions.size())).second) Fail("partition " + q.name + " is listed twice");
    b.partitions.push_back(std::move(q));
  }

  // ---- sync points
  std::map<std::string, int> sync_index;
  if (m->sync_points())
    for (auto s : *m->sync_points()) {
      SyncPoint sp;
      sp.name = Name(s->name(), "sync.name");
      sp.value = Str(s->value(), "sync.value");
      sp.producer = Str(s->producer(), "sync.producer");
      sp.consumers = Strs(s->consumers(), "sync.consumers");
      sp.slot = Name(s->slot(), "sync.slot");
      sp.kind = Str(s->kind(), "sync.kind");
      if (s->onnx_tensor()) sp.onnx_tensor = Str(s->onnx_tensor(), "sync.onnx_tensor");
      static const std::set<std::string> kKinds = {"input", "output", "fork", "join", "edge"};
      if (!kKinds.count(sp.kind)) Fail("sync point " + sp.name + ": unknown kind '" + sp.kind.substr(0, 32) + "'");
      auto si = slot_index.find(sp.slot);
      if (si == slot_index.end()) Fail("sync point " + sp.name + " names unknown slot " + sp.slot);
      sp.slot_index = si->second;
      if (sp.producer != "host") {
        auto pi = part_index.find(sp.producer);
        if (pi == part_index.end()) Fail("sync point " + sp.name + " names unknown partition " + sp.producer.substr(0, 64));
        sp.producer_index = pi->second;
      }
      if (sp.consumers.empty()) Fail("sync point " + sp.name + " has no consumers");
      for (auto& c : sp.consumers)
        if (c != "host" && !part_index.count(c)) Fail("sync point " + sp.name + " names unknown partition " + c.substr(0, 64));
      if (!sync_index.emplace(sp.name, static_cast<int>(b.sync_points.size())).second) Fail("sync point " + sp.name + " is listed twice");
      b.sync_points.push_back(sp);
    }
  std::set<int> slots_used;
  for (auto& sp : b.sync_points)
    if (!slots_used.insert(sp.slot_index).second) Fail("two sync points share slot " + sp.slot);

  // ---- bindings
  for (size_t pi = 0; pi < b.partitions.size(); ++pi) {
    auto& q = b.partitions[pi];
    std::set<std::string> tensors;
    for (auto& x : q.inputs) {
      auto si = sync_index.find(x.sync);
      if (si == sync_index.end()) Fail("partition " + q.name + " names unknown sync point " + x.sync);
      x.sync_index = si->second;
      auto& sp = b.sync_points[si->second];
      bool listed = false;
      for (auto& c : sp.consumers) listed |= (c == q.name);
      if (!listed) Fail("partition " + q.name + " reads sync point " + sp.name + " but is not among its consumers");
      if (sp.producer_index == static_cast<int>(pi)) Fail("partition " + q.name + " reads its own output " + sp.name);
      if (!tensors.insert(x.tensor).second) Fail("partition " + q.name + " binds tensor " + x.tensor.substr(0, 64) + " twice");
    }
    for (auto& x : q.outputs) {
      auto si = sync_index.find(x.sync);
      if (si == sync_index.end()) Fail("partition " + q.name + " names unknown sync point " + x.sync);
      x.sync_index = si->second;
      if (b.sync_points[si->second].producer_index != static_cast<int>(pi))
        Fail("partition " + q.name + " writes sync point " + x.sync + " whose producer is " + b.sync_points[si->second].producer);
      if (!tensors.insert(x.tensor).second) Fail("partition " + q.name + " binds tensor " + x.tensor.substr(0, 64) + " twice");
    }
  }
  for (auto& sp : b.sync_points) {
    if (sp.producer_index >= 0) {
      bool found = false;
      for (auto& x : b.partitions[sp.producer_index].outputs) found |= (x.sync == sp.name);
      if (!found) Fail("sync point " + sp.name + ": its producer " + sp.producer + " does not write it");
    }
    for (auto& c : sp.consumers) {
      if (c == "host") continue;
      bool found = false;
      for (auto& x : b.partitions[part_index[c]].inputs) found |= (x.sync == sp.name);
      if (!found) Fail("sync point " + sp.name + ": its consumer " + c + " does not read it");
    }
  }

  // ---- model inputs / outputs
  auto read_io = [&](const flatbuffers::Vector<flatbuffers::Offset<fbs::ModelIO>>* v, std::vector<ModelIO>* out, bool is_input) {
    if (!v || v->size() == 0) Fail(std::string("the manifest lists no model ") + (is_input ? "inputs" : "outputs"));
    for (auto x : *v) {
      ModelIO io;
      io.name = Str(x->name(), "io.name");
      io.sync = Name(x->sync(), "io.sync");
      io.dtype = Str(x->dtype(), "io.dtype");
      io.layout = Str(x->layout(), "io.layout");
      io.bundle_dtype = Str(x->bundle_dtype(), "io.bundle_dtype");
      io.shape = Ints(x->shape());
      io.bundle_shape = Ints(x->bundle_shape());
      const std::string what = std::string("model ") + (is_input ? "input " : "output ") + io.name.substr(0, 64);
      uint64_t onnx_bytes = TensorBytes(io.shape, io.dtype, what);
      uint64_t bundle_bytes = TensorBytes(io.bundle_shape, io.bundle_dtype, what);
      uint64_t onnx_elems = onnx_bytes / DtypeSize(io.dtype), bundle_elems = bundle_bytes / DtypeSize(io.bundle_dtype);
      if (onnx_elems != bundle_elems) Fail(what + ": shape and bundle_shape have different element counts");
      if (x->perm()) {
        io.has_perm = true;
        io.perm = Ints(x->perm());
        if (io.perm.size() != io.shape.size() || io.bundle_shape.size() != io.shape.size()) Fail(what + ": perm has the wrong rank");
        std::vector<bool> seen(io.perm.size(), false);
        for (size_t i = 0; i < io.perm.size(); ++i) {
          int64_t p = io.perm[i];
          if (p < 0 || p >= static_cast<int64_t>(io.perm.size()) || seen[p]) Fail(what + ": perm is not a permutation");
          seen[p] = true;
          if (io.bundle_shape[i] != io.shape[p]) Fail(what + ": bundle_shape is not shape permuted by perm");
        }
      }
      if (io.layout != "as-is" && io.layout != "NCHW" && io.layout != "reshape") Fail(what + ": unknown layout " + io.layout.substr(0, 32));
      if (io.layout == "NCHW" && !io.has_perm) Fail(what + ": NCHW layout without perm");
      if (x->quant()) {
        io.has_quant = true;
        if (x->quant()->scale()) io.quant.scale.assign(x->quant()->scale()->begin(), x->quant()->scale()->end());
        io.quant.zero_point = Ints(x->quant()->zero_point());
        io.quant.axis = x->quant()->axis();
        if (io.quant.scale.size() != 1 || io.quant.zero_point.size() != 1)
          Fail(what + ": only per-tensor quantization is supported at the model boundary");
        if (!(io.quant.scale[0] > 0) || !std::isfinite(io.quant.scale[0])) Fail(what + ": quantization scale must be positive");
      } else if (io.dtype != io.bundle_dtype) {
        Fail(what + ": dtype " + io.dtype + " differs from bundle dtype " + io.bundle_dtype + " without quantization");
      }
      auto si = sync_index.find(io.sync);
      if (si == sync_index.end()) Fail(what + " names unknown sync point " + io.sync);
      io.sync_index = si->second;
      auto& sp = b.sync_points[si->second];
      if (is_input && sp.producer_index != -1) Fail(what + ": its sync point " + sp.name + " is not produced by the host");
      if (!is_input) {
        bool host = false;
        for (auto& c : sp.consumers) host |= (c == "host");
        if (!host) Fail(what + ": its sync point " + sp.name + " is not consumed by the host");
      }
      const Slot& sl = b.slots[sp.slot_index];
      if (sl.dtype != io.bundle_dtype || sl.shape != io.bundle_shape) Fail(what + ": slot " + sl.name + " does not hold its bundle tensor");
      out->push_back(io);
    }
  };
  read_io(m->inputs(), &b.inputs, true);
  read_io(m->outputs(), &b.outputs, false);
  for (auto& sp : b.sync_points) {
    if (sp.producer_index == -1) {
      bool is_model_input = false;
      for (auto& io : b.inputs) is_model_input |= (io.sync == sp.name);
      if (!is_model_input) Fail("sync point " + sp.name + " is produced by the host but is no model input");
    }
  }

  // ---- schedule
  if (!m->schedule()) Fail("manifest field schedule is missing");
  std::vector<int> seen_lane(b.partitions.size(), 0), seen_step(b.partitions.size(), 0);
  if (m->schedule()->lanes())
    for (auto l : *m->schedule()->lanes()) {
      Lane lane;
      lane.processor = Str(l->processor(), "lane.processor");
      for (auto& b2 : b.lanes)
        if (b2.processor == lane.processor) Fail("schedule: two lanes for processor " + lane.processor.substr(0, 32));
      for (auto& n : Strs(l->partitions(), "lane.partitions")) {
        auto pi = part_index.find(n);
        if (pi == part_index.end()) Fail("schedule names unknown partition " + n.substr(0, 64));
        if (b.partitions[pi->second].processor != lane.processor)
          Fail("schedule: partition " + n + " (" + b.partitions[pi->second].processor + ") is on the " + lane.processor.substr(0, 32) + " lane");
        if (seen_lane[pi->second]++) Fail("schedule lists partition " + n + " twice");
        b.partitions[pi->second].lane = static_cast<int>(b.lanes.size());
        lane.partitions.push_back(pi->second);
      }
      b.lanes.push_back(lane);
    }
  if (m->schedule()->steps())
    for (auto s : *m->schedule()->steps()) {
      std::vector<int> step;
      for (auto& n : Strs(s->partitions(), "step")) {
        auto pi = part_index.find(n);
        if (pi == part_index.end()) Fail("schedule names unknown partition " + n.substr(0, 64));
        if (seen_step[pi->second]++) Fail("schedule steps list partition " + n + " twice");
        b.partitions[pi->second].step = static_cast<int>(b.steps.size());
        step.push_back(pi->second);
      }
      b.steps.push_back(step);
    }
  for (size_t i = 0; i < b.partitions.size(); ++i)
    if (!seen_lane[i] || !seen_step[i]) Fail("the schedule does not list partition " + b.partitions[i].name + " exactly once");
  // Dependencies go forward in steps, and every lane runs its partitions in step order: no deadlock.
  for (auto& q : b.partitions)
    for (auto& x : q.inputs) {
      int pr = b.sync_points[x.sync_index].producer_index;
      if (pr >= 0 && b.partitions[pr].step >= q.step)
        Fail("schedule: partition " + q.name + " (step " + std::to_string(q.step) + ") reads " + x.sync + " produced at step " +
             std::to_string(b.partitions[pr].step));
    }
  for (auto& lane : b.lanes)
    for (size_t i = 1; i < lane.partitions.size(); ++i)
      if (b.partitions[lane.partitions[i - 1]].step > b.partitions[lane.partitions[i]].step)
        Fail("schedule: lane " + lane.processor + " does not run its partitions in step order");

  // ---- liveness and overlap: two slots may share bytes only if their live step ranges are disjoint
  for (auto& sl : b.slots) { sl.first_step = kInfStep; sl.last_step = -2; }
  for (auto& sp : b.sync_points) {
    Slot& sl = b.slots[sp.slot_index];
    sl.first_step = sp.producer_index < 0 ? -1 : b.partitions[sp.producer_index].step;
    sl.last_step = sl.first_step;
    for (auto& c : sp.consumers) sl.last_step = std::max(sl.last_step, c == "host" ? kInfStep : b.partitions[part_index[c]].step);
  }
  for (size_t i = 0; i < b.slots.size(); ++i)
    for (size_t j = i + 1; j < b.slots.size(); ++j) {
      const Slot &a = b.slots[i], &c = b.slots[j];
      if (a.size == 0 || c.size == 0 || a.last_step < -1 || c.last_step < -1) continue;
      bool bytes = a.offset < c.offset + c.size && c.offset < a.offset + a.size;
      bool live = a.first_step <= c.last_step && c.first_step <= a.last_step;
      if (bytes && live) Fail("buffer slots " + a.name + " and " + c.name + " overlap while both are live");
    }
  // Dependencies: producers of inputs, plus earlier readers of any slot whose bytes this partition overwrites.
  for (size_t pi = 0; pi < b.partitions.size(); ++pi) {
    auto& q = b.partitions[pi];
    auto add = [&](int d, int sync) {
      if (d < 0 || d == static_cast<int>(pi)) return;
      for (size_t k = 0; k < q.deps.size(); ++k)
        if (q.deps[k] == d) { if (q.dep_sync[k] < 0) q.dep_sync[k] = sync; return; }
      q.deps.push_back(d);
      q.dep_sync.push_back(sync);
    };
    for (auto& x : q.inputs) add(b.sync_points[x.sync_index].producer_index, x.sync_index);
    for (auto& x : q.outputs) {
      const Slot& mine = b.slots[b.sync_points[x.sync_index].slot_index];
      for (auto& sp : b.sync_points) {
        const Slot& other = b.slots[sp.slot_index];
        if (&other == &mine || !(mine.offset < other.offset + other.size && other.offset < mine.offset + mine.size)) continue;
        for (auto& c : sp.consumers)
          if (c != "host" && b.partitions[part_index[c]].step < q.step) add(part_index[c], -1);
      }
    }
  }

  // ---- files: inside the bundle, checksums match
  for (auto& q : b.partitions) {
    std::string real = InsidePath(bundle_real, dir, q.file, ("partition " + q.name + " file").c_str());
    std::vector<uint8_t> bytes;
    if (!ReadFile(real, &bytes, kMaxPartitionBytes)) Fail("partition file " + q.file + " is unreadable");
    if (Sha256Hex(bytes.data(), bytes.size()) != q.sha256) Fail("partition file " + q.file + " was modified (sha256 mismatch)");
    if (q.has_fallback) {
      std::string freal = InsidePath(bundle_real, dir, q.fallback_file, ("partition " + q.name + " fallback file").c_str());
      if (load_files && freal != real && !ReadFile(freal, &q.fallback_bytes, kMaxPartitionBytes))
        Fail("fallback file " + q.fallback_file + " is unreadable");
    }
    if (load_files) q.bytes = std::move(bytes);
  }
  // SHA256SUMS, when present, must vouch for manifest.bin (catches edits that still parse).
  std::vector<uint8_t> sums;
  if (stat((dir + "/SHA256SUMS").c_str(), &st) == 0 && ReadFile(dir + "/SHA256SUMS", &sums, 1 << 20)) {
    std::string text(sums.begin(), sums.end()), line;
    std::stringstream ss(text);
    bool found = false;
    while (std::getline(ss, line)) {
      if (line.size() > 66 && line.compare(66, std::string::npos, "manifest.bin") == 0) {
        found = true;
        if (line.substr(0, 64) != Sha256Hex(data.data(), data.size())) Fail("manifest.bin was modified (sha256 differs from SHA256SUMS)");
      }
    }
    if (!found) Fail("SHA256SUMS does not list manifest.bin");
  }
  return b;
}

}  // namespace stretch
