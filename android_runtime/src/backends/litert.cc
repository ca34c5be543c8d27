#include "litert.h"

#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace stretch {
namespace backends {

namespace {

void FreePayload(void* p) { std::free(p); }

// "LiteRT status N (what it means)" for the statuses a backend meets when an accelerator is missing.
std::string Status(LiteRtStatus st) {
  const char* what = st == 1     ? "invalid argument"
                     : st == 5   ? "unsupported"
                     : st == 6   ? "not found"
                     : st == 502 ? "dynamic loading"
                     : st == 504 ? "compilation"
                                 : nullptr;  // litert_common.h, enum LiteRtStatus
  return "LiteRT status " + std::to_string(st) + (what ? std::string(": ") + what : "");
}

class LiteRtExecutor : public Executor {
 public:
  ~LiteRtExecutor() override {
    for (auto b : in) LiteRtDestroyTensorBuffer(b);
    for (auto b : out) LiteRtDestroyTensorBuffer(b);
    if (compiled) LiteRtDestroyCompiledModel(compiled);
    if (model) LiteRtDestroyModel(model);
  }
  std::string Run(uint64_t*) override {
    LiteRtStatus st = LiteRtRunCompiledModel(compiled, 0, in.size(), in.data(), out.size(), out.data());
    return st == kLiteRtStatusOk ? "" : Status(st);
  }

  LiteRtModel model = nullptr;
  LiteRtCompiledModel compiled = nullptr;
  std::vector<LiteRtTensorBuffer> in, out;  // in signature order, over arena bytes
};

// Binds signature input (or output) k of the executor's model to its slot.
void Bind(const Job& job, LiteRtSignature sig, bool input, LiteRtParamIndex k, LiteRtExecutor* x) {
  const std::string& part = job.partition->name;
  const char* name = nullptr;
  LiteRtTensor tensor = nullptr;
  LiteRtStatus s1 = input ? LiteRtGetSignatureInputName(sig, k, &name) : LiteRtGetSignatureOutputName(sig, k, &name);
  LiteRtStatus s2 = input ? LiteRtGetSignatureInputTensorByIndex(sig, k, &tensor) : LiteRtGetSignatureOutputTensorByIndex(sig, k, &tensor);
  if (s1 != kLiteRtStatusOk || s2 != kLiteRtStatusOk || !name) throw std::runtime_error("partition " + part + ": cannot read its signature");
  const Bound& b = job.Find(input, name);
  LiteRtRankedTensorTypeStorage type{};
  if (LiteRtGetRankedTensorType(tensor, &type) != kLiteRtStatusOk) throw std::runtime_error("partition " + part + ": tensor " + name + " is not ranked");
  RankedTypeHead head;
  std::memcpy(&head, type.bytes, sizeof head);
  size_t rank = head.rank_bits & 0x7f;
  std::vector<int64_t> dims(head.dims, head.dims + (rank <= 8 ? rank : 0));
  if (rank > 8) dims.assign(9, 0);  // never a slot's shape
  job.CheckType(b, head.element_type, dims);
  LiteRtTensorBuffer buf = nullptr;
  const size_t slot_bytes = static_cast<size_t>(b.slot->size);  // >= 0 (rule schema)
  if (LiteRtCreateTensorBufferFromHostMemory(&type, b.data, slot_bytes, nullptr, &buf) != kLiteRtStatusOk)
    throw std::runtime_error("partition " + part + ": cannot bind tensor " + name + " to slot " + b.slot->name + " (too small or misaligned)");
  (input ? x->in : x->out).push_back(buf);
  size_t sz = 0;
  if (LiteRtGetTensorBufferSize(buf, &sz) == kLiteRtStatusOk && sz > slot_bytes)
    throw std::runtime_error("partition " + part + ": tensor " + name + " needs " + std::to_string(sz) + " bytes, slot " + b.slot->name +
                             " has " + std::to_string(b.slot->size));
}

}  // namespace

LiteRtOptions MakeOptions(const LiteRtRequest& request) {
  LiteRtOptions options = nullptr;
  if (LiteRtCreateOptions(&options) != kLiteRtStatusOk) return nullptr;
  if (LiteRtSetOptionsHardwareAccelerators(options, request.accelerators) != kLiteRtStatusOk) return nullptr;
  for (const auto& p : request.payloads) {
    char* payload = strdup(p.second.c_str());
    LiteRtOpaqueOptions opaque = nullptr;
    if (LiteRtCreateOpaqueOptions(p.first.c_str(), payload, FreePayload, &opaque) != kLiteRtStatusOk) {
      std::free(payload);
      return nullptr;
    }
    if (LiteRtAddOpaqueOptions(options, opaque) != kLiteRtStatusOk) return nullptr;
  }
  return options;
}

std::string Describe(const LiteRtRequest& request) {
  std::string s;
  for (const auto& p : request.payloads) {
    std::string body;  // one line: the TOML lines joined by "; "
    for (char c : p.second) body += c == '\n' ? std::string("; ") : std::string(1, c);
    while (body.size() >= 2 && body.compare(body.size() - 2, 2, "; ") == 0) body.resize(body.size() - 2);
    s += (s.empty() ? "" : ", ") + p.first + ": " + body;
  }
  return s;
}

Environment::~Environment() {
  if (env_) LiteRtDestroyEnvironment(env_);
}

LiteRtEnvironment Environment::Get(const std::vector<LiteRtEnvOption>& options, std::string* why) {
  if (!tried_) {
    tried_ = true;
    LiteRtStatus st = LiteRtCreateEnvironment(static_cast<int>(options.size()), options.empty() ? nullptr : options.data(), &env_);
    if (st != kLiteRtStatusOk) {
      env_ = nullptr;
      error_ = "LiteRT cannot create the environment (" + Status(st) + ")";
    }
  }
  if (!env_) *why = error_;
  return env_;
}

Prepared PrepareLiteRt(LiteRtEnvironment env, const Job& job, const LiteRtRequest& request, const std::string& accelerator) {
  Prepared r;
  r.options = Describe(request);
  auto x = std::make_unique<LiteRtExecutor>();
  if (LiteRtCreateModelFromBuffer(env, job.model->data(), job.model->size(), &x->model) != kLiteRtStatusOk) {
    x->model = nullptr;
    r.why_not = "LiteRT cannot load " + job.file;
    return r;
  }
  LiteRtOptions options = MakeOptions(request);
  if (!options) {
    r.why_not = "LiteRT refuses the compilation options (" + r.options + ")";
    return r;
  }
  LiteRtStatus st = LiteRtCreateCompiledModel(env, x->model, options, &x->compiled);
  if (st != kLiteRtStatusOk || !x->compiled) {
    x->compiled = nullptr;
    r.why_not = accelerator + " cannot compile it (" + Status(st) + ")";
    return r;
  }
  if (request.whole_partition) {
    bool whole = false;
    if (LiteRtCompiledModelIsNonCpuFullyAccelerated(x->compiled, &whole) != kLiteRtStatusOk || !whole) {
      r.why_not = accelerator + " does not take the whole partition";
      return r;
    }
  }
  // Bind every signature input/output to its slot in the arena (matched by tensor name).
  LiteRtSignature sig = nullptr;
  LiteRtParamIndex nsig = 0, nin = 0, nout = 0;
  if (LiteRtGetNumModelSignatures(x->model, &nsig) != kLiteRtStatusOk || nsig < 1 || LiteRtGetModelSignature(x->model, 0, &sig) != kLiteRtStatusOk ||
      LiteRtGetNumSignatureInputs(sig, &nin) != kLiteRtStatusOk || LiteRtGetNumSignatureOutputs(sig, &nout) != kLiteRtStatusOk)
    throw std::runtime_error("partition " + job.partition->name + ": the model has no usable signature");
  job.CheckCounts(nin, nout);
  for (LiteRtParamIndex k = 0; k < nin; ++k) Bind(job, sig, true, k, x.get());
  for (LiteRtParamIndex k = 0; k < nout; ++k) Bind(job, sig, false, k, x.get());
  r.executor = std::move(x);
  r.accelerator = accelerator;
  return r;
}

namespace {

class LiteRtBackend : public Backend {
 public:
  LiteRtBackend(LiteRtRequest (*request)(const Partition&), std::string (*accelerator)(const Partition&))
      : request_(request), accelerator_(accelerator) {}
  Prepared Prepare(const Job& job) override {
    LiteRtRequest r = request_(*job.partition);  // first: an option of the wrong kind refuses the bundle here
    std::string why;
    LiteRtEnvironment env = env_.Get({}, &why);
    if (!env) return Prepared{nullptr, "", Describe(r), why};
    return PrepareLiteRt(env, job, r, accelerator_(*job.partition));
  }

 private:
  LiteRtRequest (*request_)(const Partition&);
  std::string (*accelerator_)(const Partition&);
  Environment env_;
};

}  // namespace

std::unique_ptr<Backend> MakeLiteRtBackend(LiteRtRequest (*request)(const Partition&), std::string (*accelerator)(const Partition&)) {
  return std::make_unique<LiteRtBackend>(request, accelerator);
}

}  // namespace backends
}  // namespace stretch
