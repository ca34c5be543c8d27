// Executes a checked bundle: one LiteRT compiled model per partition, one worker thread per processor lane,
// boundary tensors in one 64-byte aligned arena bound to the models as host-memory tensor buffers (no copies
// at sync points), fork/join by per-partition completion epochs (spin briefly, then block).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "bundle.h"
#include "npy.h"

namespace stretch {

struct RuntimeOptions {
  int spin_us = 50;            // spin this long on a sync point before blocking
  bool sequential = false;     // run every partition on the calling thread in step order (for comparison)
  bool allow_accelerators = true;  // false: every partition runs its CPU fallback
};

struct RunTimes {
  double total_ms = 0;
  std::vector<double> partition_ms;  // per partition
  std::vector<double> sync_wait_ms;  // per sync point: time consumers spent waiting on it
  double reuse_wait_ms = 0;          // waits for earlier readers of reused arena bytes
};

class Runtime {
 public:
  Runtime(Bundle bundle, RuntimeOptions options, std::ostream& log);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  const Bundle& bundle() const { return b_; }
  // Model inputs in ONNX layout (perm and quantization applied here, at the host boundary).
  void SetInput(size_t i, const NpyArray& a);
  NpyArray GetOutput(size_t i) const;
  RunTimes Run();
  uint64_t bytes_copied_at_sync_points() const { return sync_copy_bytes_; }
  // What each partition runs on ("xnnpack", "gpu", "cpu fallback (...)").
  const std::vector<std::string>& placement() const { return placement_; }

 private:
  struct Part;
  void Worker(int lane);
  void RunPartition(int p, RunTimes* t);
  void WaitFor(int p, uint64_t epoch, int sync, RunTimes* t);
  void MarkDone(int p, uint64_t epoch);

  Bundle b_;
  RuntimeOptions opt_;
  std::ostream& log_;
  uint8_t* arena_ = nullptr;
  void* env_ = nullptr;
  std::vector<std::unique_ptr<Part>> parts_;
  std::vector<std::string> placement_;
  uint64_t sync_copy_bytes_ = 0;  // the runtime never copies between partitions; stays 0 unless that changes

  std::vector<std::thread> workers_;
  std::unique_ptr<std::atomic<uint64_t>[]> done_;
  std::atomic<uint64_t> epoch_{0};
  std::atomic<bool> stop_{false};
  std::atomic<int> waiters_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<RunTimes> lane_times_;
  std::mutex err_mu_;
  std::string error_;
};

}  // namespace stretch
