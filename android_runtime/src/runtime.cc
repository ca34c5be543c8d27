#include "runtime.h"

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <stdexcept>

#if defined(__linux__) || defined(__ANDROID__)
#include <pthread.h>
#include <sched.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define STRETCH_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define STRETCH_PAUSE() asm volatile("yield")
#else
#define STRETCH_PAUSE() std::this_thread::yield()
#endif

#include "litert_c_api.h"

namespace stretch {

using Clock = std::chrono::steady_clock;
static double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

struct Runtime::Part {
  LiteRtModel model = nullptr;
  LiteRtCompiledModel compiled = nullptr;
  std::vector<LiteRtTensorBuffer> in, out;  // in signature order, over arena bytes
  std::string runs_on;
};

namespace {

void FreePayload(void* p) { std::free(p); }

// Builds a compiled model for one accelerator; returns "" or why it failed.
std::string Compile(LiteRtEnvironment env, const std::vector<uint8_t>& bytes, int accel, int threads, LiteRtModel* model,
                    LiteRtCompiledModel* compiled) {
  *model = nullptr;
  *compiled = nullptr;
  if (LiteRtCreateModelFromBuffer(env, bytes.data(), bytes.size(), model) != kLiteRtStatusOk) return "the model does not load";
  LiteRtOptions options = nullptr;
  if (LiteRtCreateOptions(&options) != kLiteRtStatusOk || LiteRtSetOptionsHardwareAccelerators(options, accel) != kLiteRtStatusOk)
    return "cannot create compilation options";
  if (accel & kLiteRtHwAcceleratorCpu) {
    // CPU (XNNPACK) options travel as a TOML payload under the "xnnpack" identifier.
    std::string toml = "num_threads = " + std::to_string(threads) + "\n";
    char* payload = strdup(toml.c_str());
    LiteRtOpaqueOptions cpu = nullptr;
    if (LiteRtCreateOpaqueOptions("xnnpack", payload, FreePayload, &cpu) == kLiteRtStatusOk) {
      LiteRtAddOpaqueOptions(options, cpu);
    } else {
      std::free(payload);
    }
  }
  LiteRtStatus st = LiteRtCreateCompiledModel(env, *model, options, compiled);
  // The options are kept alive for the compiled model's lifetime (ownership differs between LiteRT releases).
  if (st != kLiteRtStatusOk || *compiled == nullptr) return "the delegate cannot be created (status " + std::to_string(st) + ")";
  if (!(accel & kLiteRtHwAcceleratorCpu)) {
    bool full = false;
    if (LiteRtCompiledModelIsFullyAccelerated(*compiled, &full) != kLiteRtStatusOk || !full) {
      LiteRtDestroyCompiledModel(*compiled);
      *compiled = nullptr;
      return "the delegate does not take the whole partition";
    }
  }
  return "";
}

void Pin(const std::vector<int>& cores, std::ostream& log, const std::string& who) {
#if defined(__linux__) || defined(__ANDROID__)
  if (cores.empty()) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cores)
    if (c < CPU_SETSIZE) CPU_SET(c, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) {
    log << "note: " << who << ": cannot pin to cores";
    for (int c : cores) log << " " << c;
    log << " on this machine (not pinned)\n";
  }
#else
  (void)cores; (void)log; (void)who;
#endif
}

// Index of bundle element i's ONNX element, for a bundle tensor that is the ONNX tensor permuted by perm.
void PermuteCopy(const uint8_t* src, uint8_t* dst, const std::vector<int64_t>& onnx_shape, const std::vector<int64_t>& perm,
                 size_t es, bool to_bundle) {
  size_t rank = onnx_shape.size();
  std::vector<int64_t> onnx_stride(rank, 1), bshape(rank);
  for (size_t k = rank; k-- > 1;) onnx_stride[k - 1] = onnx_stride[k] * onnx_shape[k];
  for (size_t k = 0; k < rank; ++k) bshape[k] = onnx_shape[perm[k]];
  size_t n = 1;
  for (auto d : onnx_shape) n *= static_cast<size_t>(d);
  std::vector<int64_t> idx(rank, 0);
  for (size_t i = 0; i < n; ++i) {
    int64_t o = 0;
    for (size_t k = 0; k < rank; ++k) o += idx[k] * onnx_stride[perm[k]];
    if (to_bundle) std::memcpy(dst + i * es, src + o * es, es);
    else std::memcpy(dst + o * es, src + i * es, es);
    for (size_t k = rank; k-- > 0;) {
      if (++idx[k] < bshape[k]) break;
      idx[k] = 0;
    }
  }
}

// The head of LiteRtRankedTensorType, the same in every LiteRT 2.x release: the element type (TfLiteType
// values), then the layout, whose first 32 bits hold the rank in their low 7 bits (older releases keep a
// has_strides bit above it), then up to 8 dimensions.
struct RankedTypeHead {
  int32_t element_type;
  uint32_t rank_bits;
  int32_t dims[8];
};
static_assert(sizeof(RankedTypeHead) <= sizeof(LiteRtRankedTensorTypeStorage), "storage too small");

// Rule partition-tensors: the model's tensor has its slot's dtype and shape.
bool SameType(const LiteRtRankedTensorTypeStorage& type, const Slot& sl) {
  static const std::map<std::string, int32_t> kTfLiteType = {{"float32", 1}, {"int32", 2}, {"uint8", 3}, {"int64", 4},
                                                             {"bool", 6},    {"int16", 7}, {"int8", 9},  {"float16", 10}};
  RankedTypeHead head;
  std::memcpy(&head, type.bytes, sizeof head);
  auto it = kTfLiteType.find(sl.dtype);
  size_t rank = head.rank_bits & 0x7f;
  if (it == kTfLiteType.end() || it->second != head.element_type || rank != sl.shape.size() || rank > 8) return false;
  for (size_t k = 0; k < rank; ++k)
    if (head.dims[k] != sl.shape[k]) return false;
  return true;
}

}  // namespace

Runtime::Runtime(Bundle bundle, RuntimeOptions options, std::ostream& log) : b_(std::move(bundle)), opt_(options), log_(log) {
  size_t arena_bytes = ((b_.arena_size + 63) / 64) * 64;
  arena_ = static_cast<uint8_t*>(std::aligned_alloc(64, arena_bytes ? arena_bytes : 64));
  if (!arena_) throw std::runtime_error("cannot allocate the arena");
  std::memset(arena_, 0, arena_bytes ? arena_bytes : 64);
  LiteRtEnvironment env = nullptr;
  if (LiteRtCreateEnvironment(0, nullptr, &env) != kLiteRtStatusOk) throw std::runtime_error("cannot create the LiteRT environment");
  env_ = env;

  for (size_t pi = 0; pi < b_.partitions.size(); ++pi) {
    const Partition& q = b_.partitions[pi];
    auto part = std::make_unique<Part>();
    std::string why;
    int accel = q.processor == "gpu" ? kLiteRtHwAcceleratorGpu : q.processor == "dsp" ? kLiteRtHwAcceleratorNpu : kLiteRtHwAcceleratorCpu;
    if (accel != kLiteRtHwAcceleratorCpu && !opt_.allow_accelerators) {
      why = "accelerators disabled";
    } else {
      why = Compile(env, q.bytes, accel, q.threads, &part->model, &part->compiled);
    }
    if (why.empty()) {
      part->runs_on = q.delegate;
    } else if (accel != kLiteRtHwAcceleratorCpu && q.has_fallback) {
      const auto& fb = q.fallback_bytes.empty() ? q.bytes : q.fallback_bytes;
      if (part->model) LiteRtDestroyModel(part->model);
      std::string why2 = Compile(env, fb, kLiteRtHwAcceleratorCpu, q.threads, &part->model, &part->compiled);
      if (!why2.empty()) throw std::runtime_error("partition " + q.name + ": fallback " + q.fallback_file + " failed too: " + why2);
      part->runs_on = "cpu fallback (" + q.delegate + ": " + why + ")";
      log_ << "note: partition " << q.name << ": " << q.delegate << " delegate unavailable (" << why << "); running its CPU fallback "
           << q.fallback_file << "\n";
    } else {
      throw std::runtime_error("partition " + q.name + ": " + why);
    }
    // Bind every signature input/output to its slot in the arena (matched by tensor name).
    LiteRtSignature sig = nullptr;
    LiteRtParamIndex nsig = 0, nin = 0, nout = 0;
    if (LiteRtGetNumModelSignatures(part->model, &nsig) != kLiteRtStatusOk || nsig < 1 ||
        LiteRtGetModelSignature(part->model, 0, &sig) != kLiteRtStatusOk || LiteRtGetNumSignatureInputs(sig, &nin) != kLiteRtStatusOk ||
        LiteRtGetNumSignatureOutputs(sig, &nout) != kLiteRtStatusOk)
      throw std::runtime_error("partition " + q.name + ": the model has no usable signature");
    if (nin != q.inputs.size() || nout != q.outputs.size())
      throw BundleError(rules::Rule::kPartitionTensors, "partition " + q.name + ": the model has " + std::to_string(nin) + " inputs and " +
                                                            std::to_string(nout) + " outputs, the manifest binds " + std::to_string(q.inputs.size()) +
                                                            " and " + std::to_string(q.outputs.size()));
    auto bind = [&](bool input, LiteRtParamIndex k) {
      const char* name = nullptr;
      LiteRtTensor tensor = nullptr;
      LiteRtStatus s1 = input ? LiteRtGetSignatureInputName(sig, k, &name) : LiteRtGetSignatureOutputName(sig, k, &name);
      LiteRtStatus s2 = input ? LiteRtGetSignatureInputTensorByIndex(sig, k, &tensor) : LiteRtGetSignatureOutputTensorByIndex(sig, k, &tensor);
      if (s1 != kLiteRtStatusOk || s2 != kLiteRtStatusOk || !name) throw std::runtime_error("partition " + q.name + ": cannot read its signature");
      const auto& list = input ? q.inputs : q.outputs;
      const Binding* bnd = nullptr;
      for (auto& x : list)
        if (x.tensor == name) bnd = &x;
      if (!bnd) throw BundleError(rules::Rule::kPartitionTensors, "partition " + q.name + ": model tensor " + name + " is not bound by the manifest");
      const Slot& sl = b_.slots[b_.sync_points[bnd->sync_index].slot_index];
      LiteRtRankedTensorTypeStorage type{};
      if (LiteRtGetRankedTensorType(tensor, &type) != kLiteRtStatusOk) throw std::runtime_error("partition " + q.name + ": tensor " + name + " is not ranked");
      if (!SameType(type, sl))
        throw BundleError(rules::Rule::kPartitionTensors, "partition " + q.name + ": tensor " + name + " is not the " + sl.dtype + " tensor of slot " + sl.name);
      LiteRtTensorBuffer buf = nullptr;
      if (LiteRtCreateTensorBufferFromHostMemory(&type, arena_ + sl.offset, sl.size, nullptr, &buf) != kLiteRtStatusOk)
        throw std::runtime_error("partition " + q.name + ": cannot bind tensor " + name + " to slot " + sl.name + " (too small or misaligned)");
      size_t sz = 0;
      if (LiteRtGetTensorBufferSize(buf, &sz) == kLiteRtStatusOk && sz > sl.size)
        throw std::runtime_error("partition " + q.name + ": tensor " + name + " needs " + std::to_string(sz) + " bytes, slot " + sl.name + " has " + std::to_string(sl.size));
      (input ? part->in : part->out).push_back(buf);
    };
    for (LiteRtParamIndex k = 0; k < nin; ++k) bind(true, k);
    for (LiteRtParamIndex k = 0; k < nout; ++k) bind(false, k);
    placement_.push_back(part->runs_on);
    parts_.push_back(std::move(part));
    // The checked bytes must outlive the model (CreateModelFromBuffer does not copy); they stay in b_.
  }

  done_.reset(new std::atomic<uint64_t>[b_.partitions.size()]);
  for (size_t i = 0; i < b_.partitions.size(); ++i) done_[i] = 0;
  lane_times_.resize(b_.lanes.size());
  if (!opt_.sequential)
    for (size_t l = 0; l < b_.lanes.size(); ++l) workers_.emplace_back(&Runtime::Worker, this, static_cast<int>(l));
}

Runtime::~Runtime() {
  stop_ = true;
  {
    std::lock_guard<std::mutex> lk(mu_);
    cv_.notify_all();
  }
  for (auto& t : workers_) t.join();
  for (auto& p : parts_) {
    for (auto b : p->in) LiteRtDestroyTensorBuffer(b);
    for (auto b : p->out) LiteRtDestroyTensorBuffer(b);
    if (p->compiled) LiteRtDestroyCompiledModel(p->compiled);
    if (p->model) LiteRtDestroyModel(p->model);
  }
  if (env_) LiteRtDestroyEnvironment(static_cast<LiteRtEnvironment>(env_));
  std::free(arena_);
}

void Runtime::MarkDone(int p, uint64_t epoch) {
  done_[p].store(epoch, std::memory_order_seq_cst);
  if (waiters_.load(std::memory_order_seq_cst) > 0) {
    std::lock_guard<std::mutex> lk(mu_);
    cv_.notify_all();
  }
}

// Wait until partition p finished run `epoch`: spin for spin_us, then block on the condition variable.
void Runtime::WaitFor(int p, uint64_t epoch, int sync, RunTimes* t) {
  if (done_[p].load(std::memory_order_acquire) >= epoch) return;
  auto t0 = Clock::now();
  auto spin_until = t0 + std::chrono::microseconds(opt_.spin_us);
  while (done_[p].load(std::memory_order_acquire) < epoch && Clock::now() < spin_until) STRETCH_PAUSE();
  if (done_[p].load(std::memory_order_acquire) < epoch) {
    std::unique_lock<std::mutex> lk(mu_);
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    cv_.wait(lk, [&] { return done_[p].load(std::memory_order_seq_cst) >= epoch || stop_.load(); });
    waiters_.fetch_sub(1, std::memory_order_seq_cst);
  }
  double w = Ms(Clock::now() - t0);
  if (sync >= 0) t->sync_wait_ms[sync] += w;
  else t->reuse_wait_ms += w;
}

void Runtime::RunPartition(int p, RunTimes* t) {
  Part& part = *parts_[p];
  auto t0 = Clock::now();
  LiteRtStatus st = LiteRtRunCompiledModel(part.compiled, 0, part.in.size(), part.in.data(), part.out.size(), part.out.data());
  t->partition_ms[p] += Ms(Clock::now() - t0);
  if (st != kLiteRtStatusOk) {
    std::lock_guard<std::mutex> lk(err_mu_);
    if (error_.empty()) error_ = "partition " + b_.partitions[p].name + " failed to run (status " + std::to_string(st) + ")";
  }
}

void Runtime::Worker(int lane) {
  uint64_t seen = 0;
  std::vector<int> pinned;
  for (;;) {
    // Wait for the next run (spin briefly, then block).
    auto spin_until = Clock::now() + std::chrono::microseconds(opt_.spin_us);
    while (epoch_.load(std::memory_order_acquire) == seen && !stop_.load() && Clock::now() < spin_until) STRETCH_PAUSE();
    if (epoch_.load(std::memory_order_acquire) == seen && !stop_.load()) {
      std::unique_lock<std::mutex> lk(mu_);
      waiters_.fetch_add(1, std::memory_order_seq_cst);
      cv_.wait(lk, [&] { return epoch_.load(std::memory_order_seq_cst) != seen || stop_.load(); });
      waiters_.fetch_sub(1, std::memory_order_seq_cst);
    }
    if (stop_.load()) return;
    uint64_t epoch = epoch_.load(std::memory_order_acquire);
    seen = epoch;
    RunTimes& t = lane_times_[lane];
    for (int p : b_.lanes[lane].partitions) {
      const Partition& q = b_.partitions[p];
      if (q.affinity != pinned) {
        Pin(q.affinity, log_, "lane " + b_.lanes[lane].processor);
        pinned = q.affinity;
      }
      for (size_t k = 0; k < q.deps.size(); ++k) WaitFor(q.deps[k], epoch, q.dep_sync[k], &t);
      RunPartition(p, &t);
      MarkDone(p, epoch);
    }
  }
}

RunTimes Runtime::Run() {
  RunTimes total;
  total.partition_ms.assign(b_.partitions.size(), 0);
  total.sync_wait_ms.assign(b_.sync_points.size(), 0);
  for (auto& t : lane_times_) t = total;
  auto t0 = Clock::now();
  if (opt_.sequential) {
    for (auto& step : b_.steps)
      for (int p : step) RunPartition(p, &total);
  } else {
    uint64_t epoch = epoch_.load() + 1;
    epoch_.store(epoch, std::memory_order_seq_cst);
    if (waiters_.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard<std::mutex> lk(mu_);
      cv_.notify_all();
    }
    RunTimes host = total;
    for (size_t p = 0; p < b_.partitions.size(); ++p) WaitFor(static_cast<int>(p), epoch, -1, &host);
    for (auto& t : lane_times_) {
      for (size_t i = 0; i < t.partition_ms.size(); ++i) total.partition_ms[i] += t.partition_ms[i];
      for (size_t i = 0; i < t.sync_wait_ms.size(); ++i) total.sync_wait_ms[i] += t.sync_wait_ms[i];
      total.reuse_wait_ms += t.reuse_wait_ms;
    }
  }
  total.total_ms = Ms(Clock::now() - t0);
  std::lock_guard<std::mutex> lk(err_mu_);
  if (!error_.empty()) throw std::runtime_error(error_);
  return total;
}

void Runtime::SetInput(size_t i, const NpyArray& a) {
  const ModelIO& io = b_.inputs.at(i);
  // An input the bundle holds quantized takes the ONNX dtype (quantized here) or the bundle's dtype as it is.
  bool raw = io.has_quant && a.dtype == io.bundle_dtype;
  if ((a.dtype != io.dtype && !raw) || a.shape != io.shape) {
    std::string s;
    for (auto d : io.shape) s += (s.empty() ? "" : "x") + std::to_string(d);
    throw std::runtime_error("input " + io.name + ": expected " + io.dtype + (io.has_quant ? " or " + io.bundle_dtype : "") + " " + s + ", got " + a.dtype);
  }
  const Slot& sl = b_.slots[b_.sync_points[io.sync_index].slot_index];
  std::vector<uint8_t> tmp;
  const uint8_t* src = a.data.data();
  size_t es = DtypeSize(a.dtype);
  if (io.has_perm && io.layout == "NCHW") {
    tmp.resize(a.data.size());
    PermuteCopy(a.data.data(), tmp.data(), io.shape, io.perm, es, true);
    src = tmp.data();
  }
  size_t n = a.data.size() / es;
  uint8_t* dst = arena_ + sl.offset;
  if (io.has_quant && !raw) {
    if (io.dtype != "float32" || (io.bundle_dtype != "int8" && io.bundle_dtype != "uint8"))
      throw std::runtime_error("input " + io.name + ": unsupported quantization " + io.dtype + " -> " + io.bundle_dtype);
    double scale = io.quant.scale[0];
    int64_t zp = io.quant.zero_point[0];
    int lo = io.bundle_dtype == "int8" ? -128 : 0, hi = io.bundle_dtype == "int8" ? 127 : 255;
    for (size_t k = 0; k < n; ++k) {
      float x;
      std::memcpy(&x, src + 4 * k, 4);
      // TFLite's QUANTIZE: round half away from zero, then saturate
      double q = std::round(static_cast<double>(x / static_cast<float>(scale))) + static_cast<double>(zp);
      int v = static_cast<int>(std::min<double>(hi, std::max<double>(lo, q)));
      if (io.bundle_dtype == "int8") reinterpret_cast<int8_t*>(dst)[k] = static_cast<int8_t>(v);
      else dst[k] = static_cast<uint8_t>(v);
    }
  } else {
    std::memcpy(dst, src, a.data.size());
  }
}

NpyArray Runtime::GetOutput(size_t i) const {
  const ModelIO& io = b_.outputs.at(i);
  const Slot& sl = b_.slots[b_.sync_points[io.sync_index].slot_index];
  NpyArray a;
  a.dtype = io.dtype;
  a.shape = io.shape;
  size_t es = DtypeSize(io.dtype);
  size_t n = 1;
  for (auto d : io.shape) n *= static_cast<size_t>(d);
  std::vector<uint8_t> bundle_layout(n * es);
  const uint8_t* src = arena_ + sl.offset;
  if (io.has_quant) {
    double scale = io.quant.scale[0];
    int64_t zp = io.quant.zero_point[0];
    for (size_t k = 0; k < n; ++k) {
      int v = io.bundle_dtype == "int8" ? reinterpret_cast<const int8_t*>(src)[k] : src[k];
      float x = static_cast<float>((v - zp) * scale);
      std::memcpy(bundle_layout.data() + 4 * k, &x, 4);
    }
  } else {
    std::memcpy(bundle_layout.data(), src, n * es);
  }
  if (io.has_perm && io.layout == "NCHW") {
    a.data.resize(n * es);
    PermuteCopy(bundle_layout.data(), a.data.data(), io.shape, io.perm, es, false);
  } else {
    a.data = std::move(bundle_layout);
  }
  return a;
}

}  // namespace stretch
