#include "bundle.h"

#include <algorithm>
#include <cctype>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <set>
#include <tuple>
#include <utility>

#include <sys/stat.h>

#include "backends/registry.h"
#include "generated/manifest_generated.h"
#include "sha256.h"

namespace fbs = stretchc::bundle::fbs;

namespace stretch {

namespace {

using rules::Rule;

constexpr uint64_t kMaxPartitionBytes = 2ull << 30;
const std::set<std::string> kKinds = {"input", "output", "fork", "join", "edge"};
const std::set<std::string> kLayouts = {"as-is", "NCHW", "reshape"};
const std::set<std::string> kPrecisions = {"float32", "float16", "int8", "uint8"};
const std::set<std::string> kConversionOps = {"QUANTIZE", "DEQUANTIZE"};
const std::string kHost = "host";

[[noreturn]] void Fail(Rule r, const std::string& msg) { throw BundleError(r, msg); }

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

bool IsHex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// ---- the schema rule: every field present, with its type and allowed values (manifest.schema.json)

std::string Str(const flatbuffers::String* s, const char* what) {
  if (s == nullptr) Fail(Rule::kSchema, std::string("manifest field ") + what + " is missing");
  std::string out(s->c_str(), s->size());
  if (out.find('\0') != std::string::npos) Fail(Rule::kSchema, std::string("manifest field ") + what + " contains a NUL character");
  if (!ValidUtf8(out)) Fail(Rule::kSchema, std::string("manifest field ") + what + " is not valid UTF-8");
  return out;
}

std::string Name(const flatbuffers::String* s, const char* what) {
  std::string n = Str(s, what);
  bool ok = !n.empty() && n.size() <= rules::kNameChars;
  for (char c : n) ok = ok && (isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '+' || c == '-');
  if (!ok) Fail(Rule::kSchema, std::string("manifest field ") + what + " is not a valid name: '" + n.substr(0, 64) + "'");
  return n;
}

std::string OneOf(const flatbuffers::String* s, const char* what, const std::set<std::string>& allowed) {
  std::string v = Str(s, what);
  if (!allowed.count(v)) {
    std::string known;
    for (const auto& a : allowed) known += (known.empty() ? "" : ", ") + a;
    Fail(Rule::kSchema, std::string("manifest field ") + what + ": '" + v.substr(0, 32) + "' is not allowed (this runtime knows " + known + ")");
  }
  return v;
}

// The processors and delegates of the runtime's backends (src/backends/registry.cc).
std::set<std::string> Processors() {
  std::set<std::string> out;
  for (const auto& b : backends::All()) out.insert(b.processor);
  return out;
}
std::set<std::string> Delegates() {
  std::set<std::string> out;
  for (const auto& b : backends::All()) out.insert(b.delegate);
  return out;
}

std::string Dtype(const flatbuffers::String* s, const char* what) {
  std::string d = Str(s, what);
  if (DtypeSize(d) == 0) Fail(Rule::kSchema, std::string("manifest field ") + what + ": dtype '" + d.substr(0, 32) + "' is not one the IR knows");
  return d;
}

std::vector<int64_t> Ints(const flatbuffers::Vector<int64_t>* v, const char* what, int64_t lo = 0,
                          int64_t hi = std::numeric_limits<int64_t>::max()) {
  std::vector<int64_t> out;
  if (v) out.assign(v->begin(), v->end());
  for (int64_t x : out)
    if (x < lo || x > hi) Fail(Rule::kSchema, std::string("manifest field ") + what + ": " + std::to_string(x) + " is out of range");
  return out;
}

std::vector<std::string> Strs(const flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>* v, const char* what) {
  std::vector<std::string> out;
  if (v)
    for (auto s : *v) out.push_back(Str(s, what));
  return out;
}

template <typename T>
const T* Need(const T* x, const char* what) {
  if (x == nullptr) Fail(Rule::kSchema, std::string("manifest field ") + what + " is missing");
  return x;
}

uint64_t Product(const std::vector<int64_t>& shape) {  // only after tensor-size: no overflow
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

bool Shares(const Slot& a, const Slot& b) {  // the same formula as stretchc.bundle.manifest.sharing_pairs
  return a.offset < b.offset + b.size && b.offset < a.offset + a.size;
}

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

  void ManifestSyntax() {
    if (data_.size() < 8 || std::string(reinterpret_cast<const char*>(data_.data()) + 4, 4) != "STRB")
      Fail(Rule::kManifestSyntax, "manifest.bin is not a stretchc manifest (file identifier is not STRB)");
    flatbuffers::Verifier v(data_.data(), data_.size(), /*max_depth=*/32, /*max_tables=*/1000000);
    if (!fbs::VerifyManifestBuffer(v)) Fail(Rule::kManifestSyntax, "manifest.bin is corrupt (flatbuffer verification failed)");
    m_ = fbs::GetManifest(data_.data());
  }

  void Format() {
    if (m_->format() == nullptr || m_->format()->str() != rules::kFormat)
      Fail(Rule::kFormat, std::string("not a stretchc bundle manifest (format is not ") + rules::kFormat + ")");
    if (m_->format_version() != rules::kFormatVersion)
      Fail(Rule::kFormat, "unknown format version " + std::to_string(m_->format_version()) + " (this runtime reads version " +
                              std::to_string(rules::kFormatVersion) + ")");
  }

  // A quantization table's fields (the schema rule: a scale, a zero point and an axis >= 0, finite scales).
  static Quant ReadQuant(const fbs::Quant* x, const std::string& what) {
    Quant q;
    if (x->scale()) q.scale.assign(x->scale()->begin(), x->scale()->end());
    q.zero_point = Ints(x->zero_point(), (what + ".zero_point").c_str(), std::numeric_limits<int64_t>::min());
    q.axis = x->axis();
    if (q.scale.empty() || q.zero_point.empty() || q.axis < 0)
      Fail(Rule::kSchema, "manifest field " + what + " needs a scale, a zero point and an axis >= 0");
    for (double s : q.scale)
      if (!std::isfinite(s)) Fail(Rule::kSchema, "manifest field " + what + ".scale is not a finite number");
    return q;
  }

  ModelIO ReadIO(const fbs::ModelIO* x) {
    ModelIO io;
    x = Need(x, "io");
    io.name = Str(x->name(), "io.name");
    io.sync = Name(x->sync(), "io.sync");
    io.dtype = Dtype(x->dtype(), "io.dtype");
    io.layout = OneOf(x->layout(), "io.layout", kLayouts);
    io.bundle_dtype = Dtype(x->bundle_dtype(), "io.bundle_dtype");
    io.shape = Ints(x->shape(), "io.shape");
    io.bundle_shape = Ints(x->bundle_shape(), "io.bundle_shape");
    if (x->perm()) {
      io.has_perm = true;
      io.perm = Ints(x->perm(), "io.perm");
    }
    if (x->quant()) {
      io.has_quant = true;
      io.quant = ReadQuant(x->quant(), "io.quant");
    }
    return io;
  }

  void Schema() {
    const fbs::Manifest* m = m_;
    b_.compiler_version = Str(Need(m->compiler(), "compiler")->version(), "compiler.version");
    Str(m->compiler()->name(), "compiler.name");
    b_.model_name = Str(Need(m->model(), "model")->name(), "model.name");
    if (!IsHex64(Str(m->model()->source_sha256(), "model.source_sha256"))) Fail(Rule::kSchema, "manifest field model.source_sha256 is not a sha256");
    Str(m->model()->pipeline(), "model.pipeline");
    if (m->target()) {
      b_.target_name = Str(m->target()->name(), "target.name");
      Str(m->target()->description(), "target.description");
    }
    if (m->predicted_latency()) {
      b_.has_predicted_latency = true;
      b_.predicted_latency_ms = m->predicted_latency()->ms();
      if (!std::isfinite(b_.predicted_latency_ms)) Fail(Rule::kSchema, "manifest field predicted_latency_ms is not a finite number");
    }
    for (auto [vec, out, what] : {std::make_tuple(m->inputs(), &b_.inputs, "inputs"), std::make_tuple(m->outputs(), &b_.outputs, "outputs")}) {
      if (!vec || vec->size() == 0) Fail(Rule::kSchema, std::string("manifest field ") + what + " is empty");
      for (auto x : *vec) out->push_back(ReadIO(x));
    }

    if (!m->partitions() || m->partitions()->size() == 0) Fail(Rule::kSchema, "manifest field partitions is empty");
    for (auto p : *m->partitions()) {
      Partition q;
      p = Need(p, "partition");
      q.name = Name(p->name(), "partition.name");
      q.file = Str(p->file(), "partition.file");
      q.sha256 = Str(p->sha256(), "partition.sha256");
      if (!IsHex64(q.sha256)) Fail(Rule::kSchema, "partition " + q.name + ": sha256 is not 64 lower-case hex digits");
      q.processor = OneOf(p->processor(), "partition.processor", Processors());
      q.delegate = OneOf(p->delegate(), "partition.delegate", Delegates());
      q.precision = OneOf(p->precision(), "partition.precision", kPrecisions);
      if (p->delegate_options())
        for (auto o : *p->delegate_options()) {
          Option opt;
          std::string key = Str(Need(o, "delegate option")->key(), "delegate option key");
          switch (o->kind()) {
            case fbs::ValueKind::Null: opt.kind = Option::kNull; break;
            case fbs::ValueKind::Bool: opt.kind = Option::kBool; opt.b = o->bool_value(); break;
            case fbs::ValueKind::Int: opt.kind = Option::kInt; opt.i = o->int_value(); break;
            case fbs::ValueKind::Float:
              opt.kind = Option::kFloat;
              opt.f = o->float_value();
              if (!std::isfinite(opt.f)) Fail(Rule::kSchema, "delegate option " + key + " is not a finite number");
              break;
            case fbs::ValueKind::String: opt.kind = Option::kString; opt.s = Str(o->string_value(), "delegate option"); break;
            case fbs::ValueKind::Json: opt.kind = Option::kJson; opt.s = Str(o->string_value(), "delegate option"); break;
            default: Fail(Rule::kSchema, "delegate option " + key + " has an unknown value kind");
          }
          q.delegate_options[key] = opt;
        }
      if (p->threads() < 1 || p->threads() > 256) Fail(Rule::kSchema, "partition " + q.name + ": threads must be 1 to 256");
      q.threads = static_cast<int>(p->threads());
      for (int64_t c : Ints(p->affinity(), "partition.affinity", 0, 1023)) q.affinity.push_back(static_cast<int>(c));
      if (p->fallback()) {
        q.has_fallback = true;
        q.fallback_processor = OneOf(p->fallback()->processor(), "fallback.processor", Processors());
        q.fallback_delegate = OneOf(p->fallback()->delegate(), "fallback.delegate", Delegates());
        q.fallback_file = Str(p->fallback()->file(), "fallback.file");
      }
      q.regions = Strs(p->regions(), "partition.regions");
      if (p->inputs())
        for (auto x : *p->inputs()) q.inputs.push_back({Str(Need(x, "binding")->tensor(), "binding.tensor"), Name(x->sync(), "binding.sync")});
      if (p->outputs())
        for (auto x : *p->outputs()) q.outputs.push_back({Str(Need(x, "binding")->tensor(), "binding.tensor"), Name(x->sync(), "binding.sync")});
      if (q.outputs.empty()) Fail(Rule::kSchema, "partition " + q.name + " has no outputs");
      b_.partitions.push_back(std::move(q));
    }

    if (m->sync_points())
      for (auto s : *m->sync_points()) {
        SyncPoint sp;
        s = Need(s, "sync point");
        sp.name = Name(s->name(), "sync.name");
        sp.value = Str(s->value(), "sync.value");
        sp.producer = Str(s->producer(), "sync.producer");
        sp.consumers = Strs(s->consumers(), "sync.consumers");
        sp.slot = Name(s->slot(), "sync.slot");
        sp.kind = OneOf(s->kind(), "sync.kind", kKinds);
        if (s->onnx_tensor()) sp.onnx_tensor = Str(s->onnx_tensor(), "sync.onnx_tensor");
        if (s->quant()) {
          sp.has_quant = true;
          sp.quant = ReadQuant(s->quant(), "sync.quant");
        }
        if (s->conversions())
          for (auto c : *s->conversions()) {
            c = Need(c, "conversion");
            sp.conversions.push_back({Name(c->partition(), "conversion.partition"), OneOf(c->op(), "conversion.op", kConversionOps),
                                      Dtype(c->from_dtype(), "conversion.from_dtype"), Dtype(c->to_dtype(), "conversion.to_dtype")});
          }
        if (sp.consumers.empty()) Fail(Rule::kSchema, "sync point " + sp.name + " has no consumers");
        b_.sync_points.push_back(std::move(sp));
      }

    const fbs::Buffers* bufs = Need(m->buffers(), "buffers");
    if (bufs->alignment() != static_cast<int64_t>(rules::kAlignment))
      Fail(Rule::kSchema, "buffer alignment must be " + std::to_string(rules::kAlignment) + ", not " + std::to_string(bufs->alignment()));
    b_.alignment = rules::kAlignment;
    if (bufs->arena_size() < 0) Fail(Rule::kSchema, "arena size is negative");
    b_.arena_size = static_cast<uint64_t>(bufs->arena_size());
    if (bufs->slots())
      for (auto s : *bufs->slots()) {
        Slot sl;
        s = Need(s, "slot");
        sl.name = Name(s->name(), "slot.name");
        sl.dtype = Dtype(s->dtype(), "slot.dtype");
        sl.shape = Ints(s->shape(), "slot.shape");
        if (s->offset() < 0 || s->size() < 0) Fail(Rule::kSchema, "buffer slot " + sl.name + " has a negative offset or size");
        sl.offset = static_cast<uint64_t>(s->offset());
        sl.size = static_cast<uint64_t>(s->size());
        b_.slots.push_back(std::move(sl));
      }
    if (bufs->aliases())
      for (auto a : *bufs->aliases()) b_.aliases.emplace_back(Str(Need(a, "alias")->a(), "alias"), Str(a->b(), "alias"));

    const fbs::Schedule* sched = Need(m->schedule(), "schedule");
    if (sched->lanes())
      for (auto l : *sched->lanes()) {
        Lane lane;
        lane.processor = OneOf(Need(l, "lane")->processor(), "lane.processor", Processors());
        lane.names = Strs(l->partitions(), "lane.partitions");
        b_.lanes.push_back(std::move(lane));
      }
    if (sched->steps())
      for (auto s : *sched->steps()) b_.step_names.push_back(Strs(Need(s, "step")->partitions(), "step"));
  }

  // ---------------------------------------------------------------- names, references, bindings, delegate

  void Names() {
    auto unique = [](const char* what, auto get, const auto& items) {
      std::set<std::string> seen;
      for (auto& x : items)
        if (!seen.insert(get(x)).second) Fail(Rule::kNames, std::string(what) + " '" + get(x).substr(0, 64) + "' is listed twice");
    };
    unique("partition", [](const Partition& p) -> const std::string& { return p.name; }, b_.partitions);
    unique("sync point", [](const SyncPoint& s) -> const std::string& { return s.name; }, b_.sync_points);
    unique("buffer slot", [](const Slot& s) -> const std::string& { return s.name; }, b_.slots);
    unique("model input", [](const ModelIO& x) -> const std::string& { return x.name; }, b_.inputs);
    unique("model output", [](const ModelIO& x) -> const std::string& { return x.name; }, b_.outputs);
    for (size_t i = 0; i < b_.partitions.size(); ++i) {
      if (b_.partitions[i].name == kHost) Fail(Rule::kNames, "a partition may not be named 'host'");
      part_[b_.partitions[i].name] = static_cast<int>(i);
    }
    for (size_t i = 0; i < b_.sync_points.size(); ++i) sync_[b_.sync_points[i].name] = static_cast<int>(i);
    for (size_t i = 0; i < b_.slots.size(); ++i) slot_[b_.slots[i].name] = static_cast<int>(i);
  }

  int PartOrHost(const std::string& n) const { return n == kHost ? -1 : part_.at(n); }

  void References() {
    auto known_part = [&](const std::string& n) { return n == kHost || part_.count(n); };
    for (auto& sp : b_.sync_points) {
      if (!slot_.count(sp.slot)) Fail(Rule::kReferences, "sync point " + sp.name + " names unknown slot " + sp.slot);
      sp.slot_index = slot_.at(sp.slot);
      if (!known_part(sp.producer)) Fail(Rule::kReferences, "sync point " + sp.name + " names unknown partition '" + sp.producer.substr(0, 64) + "'");
      for (auto& c : sp.consumers)
        if (!known_part(c)) Fail(Rule::kReferences, "sync point " + sp.name + " names unknown partition '" + c.substr(0, 64) + "'");
      sp.producer_index = PartOrHost(sp.producer);
    }
    for (auto& q : b_.partitions)
      for (auto* list : {&q.inputs, &q.outputs})
        for (auto& x : *list) {
          if (!sync_.count(x.sync)) Fail(Rule::kReferences, "partition " + q.name + " names unknown sync point " + x.sync);
          x.sync_index = sync_.at(x.sync);
        }
    for (auto* list : {&b_.inputs, &b_.outputs})
      for (auto& io : *list) {
        if (!sync_.count(io.sync)) Fail(Rule::kReferences, "model tensor '" + io.name.substr(0, 64) + "' names unknown sync point " + io.sync);
        io.sync_index = sync_.at(io.sync);
      }
    for (auto& a : b_.aliases)
      for (auto* n : {&a.first, &a.second})
        if (!slot_.count(*n)) Fail(Rule::kReferences, "buffer alias names unknown slot '" + n->substr(0, 64) + "'");
    for (auto& lane : b_.lanes)
      for (auto& n : lane.names) {
        if (!part_.count(n)) Fail(Rule::kReferences, "the schedule names unknown partition '" + n.substr(0, 64) + "'");
        lane.partitions.push_back(part_.at(n));
      }
    for (auto& names : b_.step_names) {
      std::vector<int> step;
      for (auto& n : names) {
        if (!part_.count(n)) Fail(Rule::kReferences, "the schedule names unknown partition '" + n.substr(0, 64) + "'");
        step.push_back(part_.at(n));
      }
      b_.steps.push_back(std::move(step));
    }
  }

  static bool Has(const std::vector<Binding>& list, const std::string& sync) {
    for (auto& x : list)
      if (x.sync == sync) return true;
    return false;
  }

  void Bindings() {
    for (size_t pi = 0; pi < b_.partitions.size(); ++pi) {
      const Partition& q = b_.partitions[pi];
      std::set<std::string> tensors;
      for (bool input : {true, false}) {
        std::set<std::string> bound;
        for (auto& x : input ? q.inputs : q.outputs) {
          if (!tensors.insert(x.tensor).second) Fail(Rule::kBindings, "partition " + q.name + " binds tensor '" + x.tensor.substr(0, 64) + "' twice");
          if (!bound.insert(x.sync).second) Fail(Rule::kBindings, "partition " + q.name + " binds sync point " + x.sync + " twice");
          const SyncPoint& sp = b_.sync_points[x.sync_index];
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
    for (auto& sp : b_.sync_points) {
      if (std::set<std::string>(sp.consumers.begin(), sp.consumers.end()).size() != sp.consumers.size())
        Fail(Rule::kBindings, "sync point " + sp.name + " lists a consumer twice");
      if (sp.producer_index >= 0 && !Has(b_.partitions[sp.producer_index].outputs, sp.name))
        Fail(Rule::kBindings, "sync point " + sp.name + ": its producer " + sp.producer + " does not write it (nothing produces it)");
      for (auto& c : sp.consumers)
        if (c != kHost && !Has(b_.partitions[part_.at(c)].inputs, sp.name))
          Fail(Rule::kBindings, "sync point " + sp.name + ": its consumer " + c + " does not read it");
      bool from_host = sp.producer_index < 0, is_in = model_in.count(sp.name) > 0;
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
      const backends::BackendInfo* fb = q.has_fallback ? backends::ByProcessor(q.fallback_processor) : nullptr;
      if (fb && (!fb->fallback_target || fb->delegate != q.fallback_delegate))
        Fail(Rule::kDelegate, "partition " + q.name + ": the fallback " + q.fallback_processor + "/" + q.fallback_delegate + " is not a fallback backend");
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
    for (auto& sl : b_.slots) TensorBytes(sl.shape, sl.dtype, "buffer slot " + sl.name);
    for (bool input : {true, false})
      for (auto& io : input ? b_.inputs : b_.outputs) {
        std::string what = std::string("model ") + (input ? "input " : "output ") + io.name.substr(0, 64);
        TensorBytes(io.shape, io.dtype, what);
        TensorBytes(io.bundle_shape, io.bundle_dtype, what);
      }
    for (auto& sl : b_.slots) {
      uint64_t need = TensorBytes(sl.shape, sl.dtype, "buffer slot " + sl.name);
      if (sl.size < need)
        Fail(Rule::kTensorSize, "buffer slot " + sl.name + " is smaller (" + std::to_string(sl.size) + " bytes) than its tensor (" + std::to_string(need) + ")");
    }
  }

  void Arena() {
    if (b_.arena_size > rules::kArenaBytes) Fail(Rule::kArena, "arena size " + std::to_string(b_.arena_size) + " is above " + std::to_string(rules::kArenaBytes) + " bytes");
    for (auto& sl : b_.slots) {
      if (sl.offset % b_.alignment) Fail(Rule::kArena, "buffer slot " + sl.name + " is not 64-byte aligned (offset " + std::to_string(sl.offset) + ")");
      if (sl.offset > b_.arena_size || sl.size > b_.arena_size - sl.offset)
        Fail(Rule::kArena, "buffer slot " + sl.name + " lies outside the arena (" + std::to_string(sl.offset) + " + " + std::to_string(sl.size) + " > " +
                               std::to_string(b_.arena_size) + ")");
    }
  }

  void IoLayout() {
    for (bool input : {true, false})
      for (auto& io : input ? b_.inputs : b_.outputs) {
        const std::string what = std::string("model ") + (input ? "input " : "output ") + io.name.substr(0, 64);
        auto fail = [&](const std::string& why) { Fail(Rule::kIoLayout, what + ": " + why); };
        if ((io.layout == "NCHW") != io.has_perm) fail("layout " + io.layout + (io.has_perm ? " takes no perm" : " needs perm"));
        if (io.has_perm) {
          size_t rank = io.shape.size();
          if (io.perm.size() != rank || io.bundle_shape.size() != rank) fail("perm is not a permutation of its dimensions");
          std::vector<bool> seen(rank, false);
          for (int64_t p : io.perm) {
            if (p < 0 || p >= static_cast<int64_t>(rank) || seen[p]) fail("perm is not a permutation of its dimensions");
            seen[p] = true;
          }
          for (size_t i = 0; i < rank; ++i)
            if (io.bundle_shape[i] != io.shape[io.perm[i]]) fail("bundle_shape is not shape permuted by perm");
        }
        if (io.layout == "as-is" && io.bundle_shape != io.shape) fail("layout as-is but bundle_shape is not shape");
        if (Product(io.shape) != Product(io.bundle_shape)) fail("shape and bundle_shape have different element counts");
        if (!io.has_quant && io.dtype != io.bundle_dtype) fail("dtype " + io.dtype + " differs from bundle dtype " + io.bundle_dtype + " without quantization");
        if (io.has_quant) {
          if (io.quant.scale.size() != 1 || io.quant.zero_point.size() != 1) fail("only per-tensor quantization is supported at the model boundary");
          if (!(io.quant.scale[0] > 0)) fail("quantization scale must be positive and finite");
        }
        const Slot& sl = b_.slots[b_.sync_points[io.sync_index].slot_index];
        if (sl.dtype != io.bundle_dtype || sl.shape != io.bundle_shape) fail("slot " + sl.name + " does not hold its bundle tensor");
      }
  }

  // ---------------------------------------------------------------- 8-bit sync points and conversions

  void SyncQuant() {
    for (auto& sp : b_.sync_points) {
      const Slot& sl = b_.slots[sp.slot_index];
      bool eight_bit = sl.dtype == "int8" || sl.dtype == "uint8";
      if (sp.has_quant != eight_bit)
        Fail(Rule::kSyncQuant, "sync point " + sp.name + ": slot " + sl.name + " is " + sl.dtype + (eight_bit ? " without" : " with") + " quantization");
      if (!sp.has_quant) continue;
      if (sp.quant.scale.size() != 1 || sp.quant.zero_point.size() != 1 || !(sp.quant.scale[0] > 0))
        Fail(Rule::kSyncQuant, "sync point " + sp.name + ": quantization must be one positive scale and one zero point");
      int64_t lo = sl.dtype == "int8" ? -128 : 0, hi = sl.dtype == "int8" ? 127 : 255;
      if (sp.quant.zero_point[0] < lo || sp.quant.zero_point[0] > hi)
        Fail(Rule::kSyncQuant, "sync point " + sp.name + ": zero point " + std::to_string(sp.quant.zero_point[0]) + " is outside " + sl.dtype);
    }
  }

  void Conversions() {
    for (auto& sp : b_.sync_points) {
      const std::string& dtype = b_.slots[sp.slot_index].dtype;
      for (auto& cv : sp.conversions) {
        if (cv.from_dtype == cv.to_dtype) Fail(Rule::kConversions, "sync point " + sp.name + ": conversion " + cv.op + " does not change the dtype");
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
      const SyncPoint& sp = b_.sync_points[s];
      if (sp.producer_index < 0) continue;
      for (auto& c : sp.consumers)
        if (c != kHost) out.emplace_back(sp.producer_index, part_.at(c), static_cast<int>(s));
    }
    return out;
  }

  void ScheduleCover() {
    std::vector<int> in_lane(b_.partitions.size(), 0), in_step(b_.partitions.size(), 0);
    std::set<std::string> lanes_seen;
    for (size_t l = 0; l < b_.lanes.size(); ++l) {
      const Lane& lane = b_.lanes[l];
      if (!lanes_seen.insert(lane.processor).second) Fail(Rule::kScheduleCover, "the schedule has two lanes for processor " + lane.processor);
      for (int p : lane.partitions) {
        Partition& q = b_.partitions[p];
        if (q.processor != lane.processor) Fail(Rule::kScheduleCover, "partition " + q.name + " (" + q.processor + ") is on the " + lane.processor + " lane");
        ++in_lane[p];
        q.lane = static_cast<int>(l);
      }
    }
    for (size_t k = 0; k < b_.steps.size(); ++k)
      for (int p : b_.steps[k]) {
        ++in_step[p];
        b_.partitions[p].step = static_cast<int>(k);
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
    for (auto& [a, c, s] : Edges())
      if (b_.partitions[a].step >= b_.partitions[c].step)
        Fail(Rule::kScheduleOrder, "partition " + b_.partitions[c].name + " (step " + std::to_string(b_.partitions[c].step) + ") reads " +
                                       b_.sync_points[s].name + " produced by " + b_.partitions[a].name + " at step " + std::to_string(b_.partitions[a].step));
    for (auto& lane : b_.lanes)
      for (size_t i = 1; i < lane.partitions.size(); ++i)
        if (b_.partitions[lane.partitions[i - 1]].step > b_.partitions[lane.partitions[i]].step)
          Fail(Rule::kScheduleOrder, "lane " + lane.processor + " runs " + b_.partitions[lane.partitions[i - 1]].name + " before " +
                                         b_.partitions[lane.partitions[i]].name + ": not in step order");
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
    std::vector<int> sync_of_slot(b_.slots.size(), -1);
    for (size_t s = 0; s < b_.sync_points.size(); ++s) sync_of_slot[b_.sync_points[s].slot_index] = static_cast<int>(s);
    auto before = [&](const SyncPoint& x, const SyncPoint& y) {  // every read of x is over before y is written
      if (y.producer_index < 0) return false;
      for (auto& c : x.consumers)
        if (c == kHost || !anc[y.producer_index][part_.at(c)]) return false;
      return true;
    };
    for (size_t i = 0; i < b_.slots.size(); ++i)
      for (size_t j = i + 1; j < b_.slots.size(); ++j) {
        if (!Shares(b_.slots[i], b_.slots[j]) || sync_of_slot[i] < 0 || sync_of_slot[j] < 0) continue;
        const SyncPoint &x = b_.sync_points[sync_of_slot[i]], &y = b_.sync_points[sync_of_slot[j]];
        if (!before(x, y) && !before(y, x))
          Fail(Rule::kSlotOverlap, "buffer slots " + b_.slots[i].name + " and " + b_.slots[j].name + " share arena bytes while both are live (" + x.name +
                                       " and " + y.name + ")");
      }
  }

  void Aliases() {
    std::set<std::pair<std::string, std::string>> listed, actual;
    for (auto& a : b_.aliases) {
      auto pair = std::minmax(a.first, a.second);
      if (pair.first == pair.second || !listed.insert(pair).second) Fail(Rule::kAliases, "buffers.aliases lists a pair twice or a slot with itself");
    }
    for (size_t i = 0; i < b_.slots.size(); ++i)
      for (size_t j = i + 1; j < b_.slots.size(); ++j)
        if (Shares(b_.slots[i], b_.slots[j])) actual.insert(std::minmax(b_.slots[i].name, b_.slots[j].name));
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
    for (auto& q : b_.partitions) {
      std::string real = Inside(Rule::kPartitionFiles, q.file, "partition " + q.name + " file");
      std::vector<uint8_t> bytes;
      if (FileSha(Rule::kPartitionFiles, real, &bytes) != q.sha256)
        Fail(Rule::kPartitionFiles, "partition file " + q.file + " was modified (sha256 mismatch)");
      if (q.has_fallback) {
        std::string freal = Inside(Rule::kPartitionFiles, q.fallback_file, "partition " + q.name + " fallback file");
        if (load_files_ && freal != real && !ReadFile(freal, &q.fallback_bytes, kMaxPartitionBytes))
          Fail(Rule::kPartitionFiles, "fallback file " + q.fallback_file + " is unreadable");
      }
      if (load_files_) q.bytes = std::move(bytes);
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
    if (!ValidUtf8(text) || text.find('\0') != std::string::npos) Fail(Rule::kSha256sums, "SHA256SUMS is not UTF-8 text");
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
      if (q.has_fallback) need.push_back(q.fallback_file);
    }
    for (auto& rel : need)
      if (!listed.count(rel)) Fail(Rule::kSha256sums, "SHA256SUMS does not list " + rel);
  }

  // ---------------------------------------------------------------- the runtime's plan

  // Dependencies: producers of inputs, plus earlier readers of any slot whose bytes this partition overwrites.
  void Plan() {
    for (size_t pi = 0; pi < b_.partitions.size(); ++pi) {
      auto& q = b_.partitions[pi];
      auto add = [&](int d, int sync) {
        if (d < 0 || d == static_cast<int>(pi)) return;
        for (size_t k = 0; k < q.deps.size(); ++k)
          if (q.deps[k] == d) {
            if (q.dep_sync[k] < 0) q.dep_sync[k] = sync;
            return;
          }
        q.deps.push_back(d);
        q.dep_sync.push_back(sync);
      };
      for (auto& x : q.inputs) add(b_.sync_points[x.sync_index].producer_index, x.sync_index);
      for (auto& x : q.outputs) {
        const Slot& mine = b_.slots[b_.sync_points[x.sync_index].slot_index];
        for (auto& sp : b_.sync_points) {
          const Slot& other = b_.slots[sp.slot_index];
          if (&other == &mine || !Shares(mine, other)) continue;
          for (auto& c : sp.consumers)
            if (c != kHost && b_.partitions[part_.at(c)].step < q.step) add(part_.at(c), -1);
        }
      }
    }
  }

  Bundle b_;
  bool load_files_;
  std::string root_;  // the bundle directory, resolved
  std::vector<uint8_t> data_;
  const fbs::Manifest* m_ = nullptr;
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
