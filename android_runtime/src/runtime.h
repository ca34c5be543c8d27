// Executes a checked bundle: one executor per partition, prepared by the backend the registry names for the
// partition's delegate (src/backends/), or by its fallback's backend when that one cannot run it here; one
// worker thread per processor lane; boundary tensors in one 64-byte aligned arena that executors read and
// write in place where their accelerator can (every copy one makes is counted); fork/join by per-partition
// completion epochs (spin briefly, then block).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "backends/backend.h"
#include "bundle.h"
#include "npy.h"

namespace stretch {

struct RuntimeOptions {
  int spin_us = 50;            // spin this long on a sync point before blocking
  bool sequential = false;     // run every partition on the calling thread in step order (for comparison)
  bool allow_accelerators = true;  // false: every partition that has a fallback runs it (--cpu-only)
};

// Bytes the runtime copied, by where.
struct BytesCopied {
  uint64_t sync_points = 0;    // between partitions: staging by executors that cannot work in the arena
  uint64_t model_inputs = 0;   // written into the arena by SetInput (layout and dtype conversions included)
  uint64_t model_outputs = 0;  // written out of the arena by GetOutput
};

// What ran a partition: the backend and accelerator, and why the one the manifest asks for did not.
struct Placement {
  std::string backend;           // the processor of the backend that runs it
  std::string delegate;          // that backend's delegate
  std::string accelerator;       // what runs it, e.g. "LiteRT CPU accelerator (XNNPACK, 4 threads)"
  std::string options;           // the options the backend gave the accelerator
  std::string fallback_reason;   // empty: the manifest's own backend runs it
  std::string requested_options; // the options the manifest's backend built, when it could not run it
};

struct RunTimes {
  double total_ms = 0;
  std::vector<double> partition_ms;  // per partition
  std::vector<double> sync_wait_ms;  // per sync point: time consumers spent waiting on it
  double reuse_wait_ms = 0;          // waits for earlier readers of reused arena bytes
  std::vector<uint64_t> partition_bytes_copied;  // per partition: bytes its executor copied in this run
  uint64_t bytes_copied = 0;                     // their sum: bytes copied at sync points in this run
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
  // Every byte copied since construction (RunTimes has each run's share of sync_points).
  BytesCopied bytes_copied() const;
  // What runs each partition.
  const std::vector<Placement>& placement() const { return placement_; }

 private:
  void Prepare(size_t p);
  backends::Backend& BackendFor(const std::string& delegate);
  backends::Job JobFor(size_t p, const std::vector<uint8_t>& model, const std::string& file);
  void Worker(int lane);
  void RunPartition(int p, RunTimes* t);
  void WaitFor(int p, uint64_t epoch, int sync, RunTimes* t);
  void MarkDone(int p, uint64_t epoch);

  Bundle b_;
  RuntimeOptions opt_;
  std::ostream& log_;
  uint8_t* arena_ = nullptr;
  std::map<std::string, std::unique_ptr<backends::Backend>> backends_;  // by delegate; outlive executors_
  std::vector<std::unique_ptr<backends::Executor>> executors_;          // per partition
  std::vector<Placement> placement_;
  uint64_t sync_bytes_ = 0;  // summed over runs
  uint64_t input_bytes_ = 0;
  mutable uint64_t output_bytes_ = 0;

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
