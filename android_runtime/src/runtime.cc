#include "runtime.h"

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
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

#include "backends/registry.h"

namespace stretch {

using Clock = std::chrono::steady_clock;
static double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

namespace {

void Pin(const std::vector<int64_t>& cores, std::ostream& log, const std::string& who) {
#if defined(__linux__) || defined(__ANDROID__)
  if (cores.empty()) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int64_t c : cores)
    if (c < CPU_SETSIZE) CPU_SET(c, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) {
    log << "note: " << who << ": cannot pin to cores";
    for (int64_t c : cores) log << " " << c;
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

}  // namespace

Runtime::Runtime(Bundle bundle, RuntimeOptions options, std::ostream& log) : b_(std::move(bundle)), opt_(options), log_(log) {
  size_t arena_bytes = ((static_cast<size_t>(b_.buffers.arena_size) + 63) / 64) * 64;
  void* arena = nullptr;  // posix_memalign: Android's libc has aligned_alloc only from API 28
  if (posix_memalign(&arena, 64, arena_bytes ? arena_bytes : 64) != 0) throw std::runtime_error("cannot allocate the arena");
  arena_ = static_cast<uint8_t*>(arena);
  std::memset(arena_, 0, arena_bytes ? arena_bytes : 64);
  for (size_t p = 0; p < b_.partitions.size(); ++p) Prepare(p);
  done_.reset(new std::atomic<uint64_t>[b_.partitions.size()]);
  for (size_t i = 0; i < b_.partitions.size(); ++i) done_[i] = 0;
  lane_times_.resize(b_.lanes.size());
  if (!opt_.sequential)
    for (size_t l = 0; l < b_.lanes.size(); ++l) workers_.emplace_back(&Runtime::Worker, this, static_cast<int>(l));
}

backends::Backend& Runtime::BackendFor(const std::string& delegate) {
  auto& slot = backends_[delegate];
  if (!slot) slot = backends::ByDelegate(delegate)->create();  // LoadBundle refused every delegate the registry lacks
  return *slot;
}

backends::Job Runtime::JobFor(size_t p, const std::vector<uint8_t>& model, const std::string& file) {
  const Partition& q = b_.partitions[p];
  const PartitionPlan& plan = b_.plans[p];
  backends::Job job;
  job.partition = &q;
  job.model = &model;
  job.file = file;
  for (int input = 1; input >= 0; --input) {
    const auto& bindings = input ? q.inputs : q.outputs;
    for (size_t k = 0; k < bindings.size(); ++k) {
      const Slot& sl = b_.SlotOfSync((input ? plan.input_syncs : plan.output_syncs)[k]);
      (input ? job.inputs : job.outputs).push_back({bindings[k].tensor, &sl, arena_ + sl.offset});
    }
  }
  return job;
}

// Prepares partition p with its delegate's backend, or with its fallback's when that backend cannot run it
// here (or --cpu-only), and records which one runs it and why.
void Runtime::Prepare(size_t p_index) {
  const Partition& q = b_.partitions[p_index];
  const PartitionPlan& plan = b_.plans[p_index];
  backends::Prepared p;
  if (!opt_.allow_accelerators && q.fallback) p.why_not = "accelerators disabled (--cpu-only)";
  else p = BackendFor(q.delegate).Prepare(JobFor(p_index, plan.bytes, q.file));
  Placement where;
  if (p.executor) {
    const backends::BackendInfo* info = backends::ByDelegate(q.delegate);
    where = {info->processor, info->delegate, p.accelerator, p.options, "", ""};
  } else if (q.fallback) {
    // The checked bytes must outlive the models (they are not copied): they stay in b_.
    const auto& fb = plan.fallback_bytes.empty() ? plan.bytes : plan.fallback_bytes;
    backends::Prepared f = BackendFor(q.fallback->delegate).Prepare(JobFor(p_index, fb, q.fallback->file));
    if (!f.executor) throw std::runtime_error("partition " + q.name + ": " + p.why_not + "; its fallback " + q.fallback->file + " failed too: " + f.why_not);
    const backends::BackendInfo* info = backends::ByDelegate(q.fallback->delegate);
    where = {info->processor, info->delegate, f.accelerator, f.options, q.delegate + ": " + p.why_not, p.options};
    log_ << "note: partition " << q.name << ": " << q.delegate << " unavailable (" << p.why_not << "); running its fallback " << q.fallback->file
         << " on " << f.accelerator << "\n";
    p = std::move(f);
  } else {
    throw std::runtime_error("partition " + q.name + ": " + p.why_not);
  }
  executors_.push_back(std::move(p.executor));
  placement_.push_back(where);
}

Runtime::~Runtime() {
  stop_ = true;
  {
    std::lock_guard<std::mutex> lk(mu_);
    cv_.notify_all();
  }
  for (auto& t : workers_) t.join();
  executors_.clear();  // before the backends that made them
  backends_.clear();
  std::free(arena_);
}

BytesCopied Runtime::bytes_copied() const { return {sync_bytes_, input_bytes_, output_bytes_}; }

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
  auto t0 = Clock::now();
  uint64_t copied = 0;
  std::string err = executors_[p]->Run(&copied);
  t->partition_ms[p] += Ms(Clock::now() - t0);
  t->partition_bytes_copied[p] += copied;
  if (!err.empty()) {
    std::lock_guard<std::mutex> lk(err_mu_);
    if (error_.empty()) error_ = "partition " + b_.partitions[p].name + " failed to run: " + err;
  }
}

void Runtime::Worker(int lane) {
  uint64_t seen = 0;
  std::vector<int64_t> pinned;
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
    for (int p : b_.lanes[lane]) {
      const Partition& q = b_.partitions[p];
      const PartitionPlan& plan = b_.plans[p];
      if (q.affinity != pinned) {
        Pin(q.affinity, log_, "lane " + LaneName(b_.schedule.lanes[lane]));
        pinned = q.affinity;
      }
      for (size_t k = 0; k < plan.deps.size(); ++k) WaitFor(plan.deps[k], epoch, plan.dep_sync[k], &t);
      RunPartition(p, &t);
      MarkDone(p, epoch);
    }
  }
}

RunTimes Runtime::Run() {
  RunTimes total;
  total.partition_ms.assign(b_.partitions.size(), 0);
  total.sync_wait_ms.assign(b_.sync_points.size(), 0);
  total.partition_bytes_copied.assign(b_.partitions.size(), 0);
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
      for (size_t i = 0; i < t.partition_bytes_copied.size(); ++i) total.partition_bytes_copied[i] += t.partition_bytes_copied[i];
      total.reuse_wait_ms += t.reuse_wait_ms;
    }
  }
  total.total_ms = Ms(Clock::now() - t0);
  for (uint64_t b : total.partition_bytes_copied) total.bytes_copied += b;
  sync_bytes_ += total.bytes_copied;
  std::lock_guard<std::mutex> lk(err_mu_);
  if (!error_.empty()) throw std::runtime_error(error_);
  return total;
}

void Runtime::SetInput(size_t i, const NpyArray& a) {
  const ModelIO& io = b_.inputs.at(i);
  // An input the bundle holds quantized takes the ONNX dtype (quantized here) or the bundle's dtype as it is.
  bool raw = io.quant && a.dtype == io.bundle_dtype;
  if ((a.dtype != io.dtype && !raw) || a.shape != io.shape) {
    std::string s;
    for (auto d : io.shape) s += (s.empty() ? "" : "x") + std::to_string(d);
    throw std::runtime_error("input " + io.name + ": expected " + io.dtype + (io.quant ? " or " + io.bundle_dtype : "") + " " + s + ", got " + a.dtype);
  }
  const Slot& sl = b_.SlotOfSync(b_.input_sync.at(i));
  uint8_t* dst = arena_ + sl.offset;
  size_t es = DtypeSize(a.dtype);
  size_t n = a.data.size() / es;
  bool permute = io.perm && io.layout == "NCHW", quantize = io.quant && !raw;
  if (!quantize) {  // one copy into the slot, permuted or not
    if (permute) PermuteCopy(a.data.data(), dst, io.shape, *io.perm, es, true);
    else std::memcpy(dst, a.data.data(), a.data.size());
    input_bytes_ += a.data.size();
    return;
  }
  if (io.dtype != "float32" || (io.bundle_dtype != "int8" && io.bundle_dtype != "uint8"))
    throw std::runtime_error("input " + io.name + ": unsupported quantization " + io.dtype + " -> " + io.bundle_dtype);
  std::vector<uint8_t> tmp;
  const uint8_t* src = a.data.data();
  if (permute) {
    tmp.resize(a.data.size());
    PermuteCopy(a.data.data(), tmp.data(), io.shape, *io.perm, es, true);
    src = tmp.data();
    input_bytes_ += tmp.size();
  }
  double scale = io.quant->scale[0];
  int64_t zp = io.quant->zero_point[0];
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
  input_bytes_ += n;
}

NpyArray Runtime::GetOutput(size_t i) const {
  const ModelIO& io = b_.outputs.at(i);
  const Slot& sl = b_.SlotOfSync(b_.output_sync.at(i));
  NpyArray a;
  a.dtype = io.dtype;
  a.shape = io.shape;
  size_t es = DtypeSize(io.dtype);
  size_t n = 1;
  for (auto d : io.shape) n *= static_cast<size_t>(d);
  bool permute = io.perm && io.layout == "NCHW";
  const uint8_t* src = arena_ + sl.offset;
  std::vector<uint8_t> bundle_layout;
  if (io.quant) {  // dequantized into the bundle's layout, then permuted
    bundle_layout.resize(n * es);
    double scale = io.quant->scale[0];
    int64_t zp = io.quant->zero_point[0];
    for (size_t k = 0; k < n; ++k) {
      int v = io.bundle_dtype == "int8" ? reinterpret_cast<const int8_t*>(src)[k] : src[k];
      float x = static_cast<float>((v - zp) * scale);
      std::memcpy(bundle_layout.data() + 4 * k, &x, 4);
    }
    output_bytes_ += bundle_layout.size();
    src = bundle_layout.data();
  }
  if (permute) {
    a.data.resize(n * es);
    PermuteCopy(src, a.data.data(), io.shape, *io.perm, es, false);
    output_bytes_ += a.data.size();
  } else if (io.quant) {
    a.data = std::move(bundle_layout);
  } else {
    a.data.assign(src, src + n * es);
    output_bytes_ += a.data.size();
  }
  return a;
}

}  // namespace stretch
