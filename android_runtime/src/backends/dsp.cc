// The DSP backend: the Hexagon delegate of classic TFLite (Snapdragon 845/855-class phones; the TFLite
// Hexagon delegate knows SoCs up to the 865, ../shared/facts/tflite-delegates.md §1.1), run through the classic
// TFLite C API, both loaded at run time (tflite_classic.h). It applies the manifest's options:
// - library_path: TfLiteHexagonInitWithPath(library_path), which sets ADSP_LIBRARY_PATH to
//   "<library_path>;/system/lib/rfsa/adsp;/system/vendor/lib/rfsa/adsp;/dsp" (where the skel is looked up);
//   ADSP_LIBRARY_PATH belongs to the process, so one library_path serves every DSP partition;
// - powersave_level: TfLiteHexagonDelegateOptions.powersave_level, which the delegate hands to
//   hexagon_nn_set_powersave_level per graph (../shared/facts/: tflite-delegates.md §1.2, nnstretch.md §5);
// - skel: reported only (the delegate's interface library picks the skel itself).
// The delegate must take every op of the partition: the backend wraps it in a delegate of its own that counts,
// after the Hexagon delegate's Prepare, the nodes of the execution plan that are not delegate kernels.
// Otherwise (a library or symbol missing, TfLiteHexagonDelegateCreate returning null, the interpreter refusing
// the delegate, part of the graph left to the CPU) the partition runs its fallback and the report says which.
// The classic interpreter owns its tensors, so every run copies the inputs from the arena and the outputs back
// (counted as bytes copied at sync points).
#include <cstdint>

#include "backend.h"
#include "tflite_classic.h"

namespace stretch {
namespace backends {

namespace {

using namespace tflite_c;

struct DspOptions {
  int64_t powersave_level = 0;
  std::string library_path, skel;
  int64_t threads = 1;  // for the interpreter's CPU kernels (none when the delegate takes the whole graph)
};

DspOptions ReadDspOptions(const Partition& q) {
  DspOptions o;
  o.powersave_level = IntOption(q, "powersave_level", 0);
  if (o.powersave_level < 0 || o.powersave_level > INT32_MAX)
    throw BundleError(rules::Rule::kSchema, "partition " + q.name + ": delegate option powersave_level is out of range");
  o.library_path = StringOption(q, "library_path", "");
  o.skel = StringOption(q, "skel", "");
  o.threads = q.threads;
  return o;
}

// A delegate in front of the Hexagon delegate: forwards to it and counts what its Prepare delegated.
struct CountingDelegate {
  TfLiteDelegate self{};
  TfLiteDelegate* inner = nullptr;
  int nodes = 0;      // nodes in the execution plans before the Hexagon delegate ran
  int kernels = 0;    // delegate kernels after it ran
  int undelegated = 0;  // nodes left to the interpreter's own kernels

  explicit CountingDelegate(TfLiteDelegate* d) : inner(d) {
    self.data_ = this;
    self.Prepare = PrepareThunk;
    self.CopyFromBufferHandle = d->CopyFromBufferHandle ? CopyFromThunk : nullptr;
    self.CopyToBufferHandle = d->CopyToBufferHandle ? CopyToThunk : nullptr;
    self.FreeBufferHandle = d->FreeBufferHandle ? FreeThunk : nullptr;
    self.flags = d->flags;
  }
  static CountingDelegate* Of(TfLiteDelegate* d) { return static_cast<CountingDelegate*>(d->data_); }

  static TfLiteStatus PrepareThunk(TfLiteContext* context, TfLiteDelegate* d) {
    CountingDelegate* w = Of(d);
    auto* c = reinterpret_cast<TfLiteContextHead*>(context);
    TfLiteIntArray* plan = nullptr;
    if (c->GetExecutionPlan(context, &plan) != kTfLiteOk) return kTfLiteError;
    w->nodes += plan->size;
    TfLiteStatus st = w->inner->Prepare(context, w->inner);
    if (st != kTfLiteOk) return st;
    if (c->GetExecutionPlan(context, &plan) != kTfLiteOk) return kTfLiteError;
    for (int i = 0; i < plan->size; ++i) {
      TfLiteNode* node = nullptr;
      TfLiteRegistrationHead* reg = nullptr;
      if (c->GetNodeAndRegistration(context, plan->data[i], &node, &reg) != kTfLiteOk || !reg) return kTfLiteError;
      if (reg->builtin_code == kTfLiteBuiltinDelegate) ++w->kernels;
      else ++w->undelegated;
    }
    return kTfLiteOk;
  }
  static TfLiteStatus CopyFromThunk(TfLiteContext* c, TfLiteDelegate* d, int h, TfLiteTensor* t) {
    return Of(d)->inner->CopyFromBufferHandle(c, Of(d)->inner, h, t);
  }
  static TfLiteStatus CopyToThunk(TfLiteContext* c, TfLiteDelegate* d, int h, TfLiteTensor* t) {
    return Of(d)->inner->CopyToBufferHandle(c, Of(d)->inner, h, t);
  }
  static void FreeThunk(TfLiteContext* c, TfLiteDelegate* d, int* h) { Of(d)->inner->FreeBufferHandle(c, Of(d)->inner, h); }
};

class DspExecutor : public Executor {
 public:
  DspExecutor(const ClassicApi& c, const HexagonApi& h) : c_(c), h_(h) {}
  ~DspExecutor() override {
    if (interpreter) c_.InterpreterDelete(interpreter);  // before the delegate it runs
    if (options) c_.OptionsDelete(options);
    if (counting) h_.DelegateDelete(counting->inner);
    if (model) c_.ModelDelete(model);
  }
  std::string Run(uint64_t* bytes_copied) override {
    for (auto& s : inputs) {
      if (c_.CopyFromBuffer(s.tensor, s.bound.data, s.bytes) != kTfLiteOk) return "cannot copy input " + s.bound.tensor + " into the interpreter";
      *bytes_copied += s.bytes;
    }
    if (c_.Invoke(interpreter) != kTfLiteOk) return "TfLiteInterpreterInvoke failed";
    for (auto& s : outputs) {
      if (c_.CopyToBuffer(s.tensor, s.bound.data, s.bytes) != kTfLiteOk) return "cannot copy output " + s.bound.tensor + " out of the interpreter";
      *bytes_copied += s.bytes;
    }
    return "";
  }

  struct Staged {
    TfLiteTensor* tensor;
    Bound bound;
    size_t bytes;
  };
  TfLiteModel* model = nullptr;
  TfLiteInterpreterOptions* options = nullptr;
  std::unique_ptr<CountingDelegate> counting;
  TfLiteInterpreter* interpreter = nullptr;
  std::vector<Staged> inputs, outputs;

 private:
  const ClassicApi& c_;
  const HexagonApi& h_;
};

class DspBackend : public Backend {
 public:
  ~DspBackend() override {
    if (initialized_) hexagon_->TearDown();
  }

  Prepared Prepare(const Job& job) override {
    DspOptions o = ReadDspOptions(*job.partition);
    Prepared r;
    r.options = "powersave_level = " + std::to_string(o.powersave_level) + "; library_path = " + o.library_path + "; skel = " + o.skel;
    if (!Load(&r.why_not)) return r;
    if (!initialized_) {
      // The path goes to the delegate as given; an empty one initialises without touching ADSP_LIBRARY_PATH.
      hexagon_->InitWithPath(o.library_path.empty() ? nullptr : o.library_path.c_str());
      initialized_ = true;
      library_path_ = o.library_path;
    } else if (o.library_path != library_path_) {
      r.why_not = "library_path " + o.library_path + " differs from " + library_path_ + ", which this process gave the Hexagon delegate already";
      return r;
    }
    TfLiteHexagonDelegateOptions ho = hexagon_->OptionsDefault();
    ho.powersave_level = static_cast<int>(o.powersave_level);
    TfLiteDelegate* delegate = hexagon_->DelegateCreate(&ho);
    if (!delegate) {
      r.why_not = "TfLiteHexagonDelegateCreate returned null (no usable libhexagon_interface.so or skel of the same version, or a SoC the delegate does not support)";
      return r;
    }
    auto x = std::make_unique<DspExecutor>(*classic_, *hexagon_);
    x->counting = std::make_unique<CountingDelegate>(delegate);
    x->model = classic_->ModelCreate(job.model->data(), job.model->size());
    if (!x->model) {
      r.why_not = "the TFLite C API cannot load " + job.file;
      return r;
    }
    x->options = classic_->OptionsCreate();
    classic_->OptionsSetNumThreads(x->options, static_cast<int32_t>(o.threads));
    classic_->OptionsAddDelegate(x->options, &x->counting->self);
    x->interpreter = classic_->InterpreterCreate(x->model, x->options);
    if (!x->interpreter) {
      r.why_not = "the TFLite interpreter cannot apply the Hexagon delegate";
      return r;
    }
    const CountingDelegate& n = *x->counting;
    if (n.undelegated > 0 || n.kernels == 0) {
      r.why_not = "the Hexagon delegate does not take the whole partition (" + std::to_string(n.undelegated) + " of " + std::to_string(n.nodes) +
                  " ops left to the CPU)";
      return r;
    }
    if (classic_->AllocateTensors(x->interpreter) != kTfLiteOk) {
      r.why_not = "TfLiteInterpreterAllocateTensors failed";
      return r;
    }
    int32_t nin = classic_->InputCount(x->interpreter), nout = classic_->OutputCount(x->interpreter);
    job.CheckCounts(static_cast<size_t>(nin), static_cast<size_t>(nout));
    for (int32_t k = 0; k < nin; ++k) x->inputs.push_back(Stage(job, true, classic_->InputTensor(x->interpreter, k)));
    for (int32_t k = 0; k < nout; ++k)
      x->outputs.push_back(Stage(job, false, const_cast<TfLiteTensor*>(classic_->OutputTensor(x->interpreter, k))));
    r.executor = std::move(x);
    r.accelerator = "Hexagon delegate (" + hexagon_->lib.path + ", TFLite C API " + classic_->lib.path + " version " + classic_->Version() +
                    ", powersave_level " + std::to_string(o.powersave_level) + ")";
    return r;
  }

 private:
  // Loads both libraries once; afterwards says again why they are not there.
  bool Load(std::string* why) {
    if (!tried_) {
      tried_ = true;
      std::string reason;
      classic_ = LoadClassicApi(&reason);
      if (!classic_) load_error_ = "no classic TFLite C API (" + reason + ")";
      if (classic_) hexagon_ = LoadHexagonApi(&reason);
      if (classic_ && !hexagon_) load_error_ = "no Hexagon delegate library (" + reason + ")";
    }
    if (!hexagon_) *why = load_error_;
    return hexagon_ != nullptr;
  }

  // The interpreter tensor `t` and the slot the manifest binds it to (checked like the LiteRT backends do).
  DspExecutor::Staged Stage(const Job& job, bool input, TfLiteTensor* t) {
    const char* name = classic_->TensorName(t);
    const Bound& b = job.Find(input, name ? name : "");
    std::vector<int64_t> dims;
    for (int32_t d = 0; d < classic_->TensorNumDims(t); ++d) dims.push_back(classic_->TensorDim(t, d));
    job.CheckType(b, classic_->TensorType(t), dims);
    size_t bytes = classic_->TensorByteSize(t);
    if (bytes > static_cast<size_t>(b.slot->size))  // size >= 0 (rule schema)
      throw BundleError(rules::Rule::kPartitionTensors, "partition " + job.partition->name + ": tensor " + b.tensor + " needs " +
                                                            std::to_string(bytes) + " bytes, slot " + b.slot->name + " has " + std::to_string(b.slot->size));
    return {t, b, bytes};
  }

  bool tried_ = false, initialized_ = false;
  std::string load_error_, library_path_;
  std::unique_ptr<ClassicApi> classic_;
  std::unique_ptr<HexagonApi> hexagon_;
};

}  // namespace

std::unique_ptr<Backend> MakeDspBackend() { return std::make_unique<DspBackend>(); }

}  // namespace backends
}  // namespace stretch
