// TEST DOUBLE of libtensorflowlite_c.so (the classic TFLite C API), built for the host tests only. It
// implements the functions android_runtime/src/backends/tflite_c_api.h lists as a thin layer over the LiteRT C
// API of the wheel's libLiteRt.so (CPU accelerator), so a partition run through it computes real outputs. Its
// interpreter keeps an execution plan of one node per op and applies delegates as TFLite does: each
// delegate's Prepare sees the plan through TfLiteContext::GetExecutionPlan / GetNodeAndRegistration and
// replaces nodes with ReplaceNodeSubsetsWithDelegateKernels (one delegate kernel, builtin code 51). The
// delegate kernels compute nothing here: LiteRT runs the whole model on the CPU either way.
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "doubles.h"
#include "litert_c_api.h"

namespace stretch {
namespace tflite_c {

struct TfLiteModel {
  LiteRtModel model = nullptr;
  std::vector<int> op_codes;
};

struct TfLiteInterpreterOptions {
  int threads = 1;
  std::vector<TfLiteDelegate*> delegates;
};

struct TfLiteTensor {
  std::string name;
  TfLiteType type = 0;
  std::vector<int32_t> dims;
  size_t bytes = 0;
  void* data = nullptr;  // 64-byte aligned, owned
  LiteRtTensorBuffer buffer = nullptr;
};

struct TfLiteInterpreter {
  TfLiteContextHead context{};  // first: the TfLiteContext* delegates get points here
  std::vector<TfLiteRegistrationHead> nodes;
  std::vector<int> plan_storage;  // TfLiteIntArray: size, then the node indices
  LiteRtCompiledModel compiled = nullptr;
  std::vector<TfLiteTensor*> inputs, outputs;

  TfLiteIntArray* plan() { return reinterpret_cast<TfLiteIntArray*>(plan_storage.data()); }
  void SetPlan(const std::vector<int>& indices) {
    plan_storage.assign(1, static_cast<int>(indices.size()));
    plan_storage.insert(plan_storage.end(), indices.begin(), indices.end());
  }
};

}  // namespace tflite_c
}  // namespace stretch

using namespace stretch::tflite_c;

namespace {

LiteRtEnvironment Env() {
  static LiteRtEnvironment env = [] {
    LiteRtEnvironment e = nullptr;
    return LiteRtCreateEnvironment(0, nullptr, &e) == kLiteRtStatusOk ? e : nullptr;
  }();
  return env;
}

TfLiteInterpreter* Of(TfLiteContext* c) { return reinterpret_cast<TfLiteInterpreter*>(c); }

TfLiteStatus GetExecutionPlan(TfLiteContext* c, TfLiteIntArray** plan) {
  *plan = Of(c)->plan();
  return kTfLiteOk;
}

TfLiteStatus GetNodeAndRegistration(TfLiteContext* c, int index, TfLiteNode** node, TfLiteRegistrationHead** reg) {
  TfLiteInterpreter* it = Of(c);
  if (index < 0 || static_cast<size_t>(index) >= it->nodes.size()) return kTfLiteError;
  *node = nullptr;
  *reg = &it->nodes[index];
  return kTfLiteOk;
}

// Replaces `replace` in the plan by one new delegate kernel node, after the nodes that stay.
TfLiteStatus ReplaceNodeSubsets(TfLiteContext* c, TfLiteRegistrationHead registration, const TfLiteIntArray* replace, TfLiteDelegate*) {
  TfLiteInterpreter* it = Of(c);
  std::vector<int> keep;
  TfLiteIntArray* plan = it->plan();
  for (int i = 0; i < plan->size; ++i) {
    bool gone = false;
    for (int k = 0; k < replace->size; ++k) gone |= replace->data[k] == plan->data[i];
    if (!gone) keep.push_back(plan->data[i]);
  }
  registration.builtin_code = kTfLiteBuiltinDelegate;
  it->nodes.push_back(registration);
  keep.push_back(static_cast<int>(it->nodes.size()) - 1);
  it->SetPlan(keep);
  return kTfLiteOk;
}

size_t ElementSize(TfLiteType t) {
  switch (t) {
    case 1: case 2: return 4;   // float32, int32
    case 3: case 6: case 9: return 1;  // uint8, bool, int8
    case 4: return 8;           // int64
    case 7: case 10: return 2;  // int16, float16
    default: return 0;
  }
}

void FreePayload(void* p) { std::free(p); }

void DeleteTensor(TfLiteTensor* t) {
  if (t->buffer) LiteRtDestroyTensorBuffer(t->buffer);
  std::free(t->data);
  delete t;
}

// A tensor of the compiled model's signature, with memory of its own bound as a LiteRT host buffer.
TfLiteTensor* MakeTensor(LiteRtSignature sig, bool input, LiteRtParamIndex k) {
  const char* name = nullptr;
  LiteRtTensor tensor = nullptr;
  if ((input ? LiteRtGetSignatureInputName(sig, k, &name) : LiteRtGetSignatureOutputName(sig, k, &name)) != kLiteRtStatusOk ||
      (input ? LiteRtGetSignatureInputTensorByIndex(sig, k, &tensor) : LiteRtGetSignatureOutputTensorByIndex(sig, k, &tensor)) != kLiteRtStatusOk)
    return nullptr;
  LiteRtRankedTensorTypeStorage type{};
  if (LiteRtGetRankedTensorType(tensor, &type) != kLiteRtStatusOk) return nullptr;
  RankedTypeHead head;
  std::memcpy(&head, type.bytes, sizeof head);
  auto* t = new TfLiteTensor;
  t->name = name;
  t->type = head.element_type;
  t->dims.assign(head.dims, head.dims + (head.rank_bits & 0x7f));
  t->bytes = ElementSize(t->type);
  for (int32_t d : t->dims) t->bytes *= static_cast<size_t>(d);
  t->data = std::aligned_alloc(64, ((t->bytes + 63) / 64) * 64 + 64);
  if (LiteRtCreateTensorBufferFromHostMemory(&type, t->data, t->bytes, nullptr, &t->buffer) != kLiteRtStatusOk) {
    DeleteTensor(t);
    return nullptr;
  }
  return t;
}

}  // namespace

extern "C" {

const char* TfLiteVersion() {
  return "TEST DOUBLE (tests/android_runtime/doubles/tflite_c_double.cc, LiteRT CPU underneath)";
}

TfLiteModel* TfLiteModelCreate(const void* data, size_t size) {
  if (!Env()) return nullptr;
  auto* m = new TfLiteModel;
  LiteRtParamIndex main = 0, n = 0;
  LiteRtSubgraph sg = nullptr;
  if (LiteRtCreateModelFromBuffer(Env(), data, size, &m->model) != kLiteRtStatusOk || LiteRtGetMainModelSubgraphIndex(m->model, &main) != kLiteRtStatusOk ||
      LiteRtGetModelSubgraph(m->model, main, &sg) != kLiteRtStatusOk || LiteRtGetNumSubgraphOps(sg, &n) != kLiteRtStatusOk) {
    if (m->model) LiteRtDestroyModel(m->model);
    delete m;
    return nullptr;
  }
  for (LiteRtParamIndex i = 0; i < n; ++i) {
    LiteRtOp op = nullptr;
    LiteRtOpCode code = 0;
    LiteRtGetSubgraphOp(sg, i, &op);
    LiteRtGetOpCode(op, &code);
    m->op_codes.push_back(code);
  }
  return m;
}

void TfLiteModelDelete(TfLiteModel* m) {
  if (!m) return;
  LiteRtDestroyModel(m->model);
  delete m;
}

TfLiteInterpreterOptions* TfLiteInterpreterOptionsCreate() { return new TfLiteInterpreterOptions; }
void TfLiteInterpreterOptionsDelete(TfLiteInterpreterOptions* o) { delete o; }
void TfLiteInterpreterOptionsSetNumThreads(TfLiteInterpreterOptions* o, int32_t n) { o->threads = n; }
void TfLiteInterpreterOptionsAddDelegate(TfLiteInterpreterOptions* o, TfLiteDelegate* d) {
  o->delegates.push_back(d);
}

void TfLiteInterpreterDelete(TfLiteInterpreter* it) {
  if (!it) return;
  for (auto* t : it->inputs) DeleteTensor(t);
  for (auto* t : it->outputs) DeleteTensor(t);
  if (it->compiled) LiteRtDestroyCompiledModel(it->compiled);
  delete it;
}

// Applies the delegates (a failing Prepare fails the creation, as TFLite's C API does), then compiles the model
// for LiteRT's CPU accelerator with the requested threads.
TfLiteInterpreter* TfLiteInterpreterCreate(const TfLiteModel* m, const TfLiteInterpreterOptions* o) {
  auto* it = new TfLiteInterpreter;
  it->context.GetExecutionPlan = GetExecutionPlan;
  it->context.GetNodeAndRegistration = GetNodeAndRegistration;
  it->context.ReplaceNodeSubsetsWithDelegateKernels = reinterpret_cast<void*>(&ReplaceNodeSubsets);
  std::vector<int> plan;
  for (size_t i = 0; i < m->op_codes.size(); ++i) {
    TfLiteRegistrationHead r{};
    r.builtin_code = m->op_codes[i];
    it->nodes.push_back(r);
    plan.push_back(static_cast<int>(i));
  }
  it->SetPlan(plan);
  TfLiteInterpreterOptions defaults;
  if (!o) o = &defaults;
  for (TfLiteDelegate* d : o->delegates)
    if (d->Prepare(reinterpret_cast<TfLiteContext*>(&it->context), d) != kTfLiteOk) {
      TfLiteInterpreterDelete(it);
      return nullptr;
    }
  LiteRtOptions options = nullptr;
  LiteRtOpaqueOptions cpu = nullptr;
  char* payload = strdup(("num_threads = " + std::to_string(o->threads) + "\n").c_str());
  LiteRtSignature sig = nullptr;
  LiteRtParamIndex nin = 0, nout = 0;
  if (LiteRtCreateOptions(&options) != kLiteRtStatusOk || LiteRtSetOptionsHardwareAccelerators(options, kLiteRtHwAcceleratorCpu) != kLiteRtStatusOk ||
      LiteRtCreateOpaqueOptions("xnnpack", payload, FreePayload, &cpu) != kLiteRtStatusOk || LiteRtAddOpaqueOptions(options, cpu) != kLiteRtStatusOk ||
      LiteRtCreateCompiledModel(Env(), m->model, options, &it->compiled) != kLiteRtStatusOk || LiteRtGetModelSignature(m->model, 0, &sig) != kLiteRtStatusOk ||
      LiteRtGetNumSignatureInputs(sig, &nin) != kLiteRtStatusOk || LiteRtGetNumSignatureOutputs(sig, &nout) != kLiteRtStatusOk) {
    TfLiteInterpreterDelete(it);
    return nullptr;
  }
  for (int input = 1; input >= 0; --input)
    for (LiteRtParamIndex k = 0; k < (input ? nin : nout); ++k) {
      TfLiteTensor* t = MakeTensor(sig, input, k);
      if (!t) {
        TfLiteInterpreterDelete(it);
        return nullptr;
      }
      (input ? it->inputs : it->outputs).push_back(t);
    }
  return it;
}

TfLiteStatus TfLiteInterpreterAllocateTensors(TfLiteInterpreter*) { return kTfLiteOk; }

TfLiteStatus TfLiteInterpreterInvoke(TfLiteInterpreter* it) {
  std::vector<LiteRtTensorBuffer> in, out;
  for (auto* t : it->inputs) in.push_back(t->buffer);
  for (auto* t : it->outputs) out.push_back(t->buffer);
  return LiteRtRunCompiledModel(it->compiled, 0, in.size(), in.data(), out.size(), out.data()) == kLiteRtStatusOk ? kTfLiteOk : kTfLiteError;
}

int32_t TfLiteInterpreterGetInputTensorCount(const TfLiteInterpreter* it) {
  return static_cast<int32_t>(it->inputs.size());
}
TfLiteTensor* TfLiteInterpreterGetInputTensor(const TfLiteInterpreter* it, int32_t i) { return it->inputs.at(i); }
int32_t TfLiteInterpreterGetOutputTensorCount(const TfLiteInterpreter* it) {
  return static_cast<int32_t>(it->outputs.size());
}
const TfLiteTensor* TfLiteInterpreterGetOutputTensor(const TfLiteInterpreter* it, int32_t i) {
  return it->outputs.at(i);
}

TfLiteType TfLiteTensorType(const TfLiteTensor* t) { return t->type; }
int32_t TfLiteTensorNumDims(const TfLiteTensor* t) { return static_cast<int32_t>(t->dims.size()); }
int32_t TfLiteTensorDim(const TfLiteTensor* t, int32_t i) { return t->dims.at(i); }
size_t TfLiteTensorByteSize(const TfLiteTensor* t) { return t->bytes; }
const char* TfLiteTensorName(const TfLiteTensor* t) { return t->name.c_str(); }

TfLiteStatus TfLiteTensorCopyFromBuffer(TfLiteTensor* t, const void* data, size_t size) {
  if (size != t->bytes) return kTfLiteError;
  std::memcpy(t->data, data, size);
  return kTfLiteOk;
}

TfLiteStatus TfLiteTensorCopyToBuffer(const TfLiteTensor* t, void* data, size_t size) {
  if (size != t->bytes) return kTfLiteError;
  std::memcpy(data, t->data, size);
  return kTfLiteOk;
}

}  // extern "C"
