// Preparing a partition with the LiteRT CompiledModel API (libLiteRt.so), shared by the backends whose
// accelerator LiteRT drives (cpu, gpu, npu): compile for a set of accelerators with opaque options, bind every
// signature tensor to its arena slot as a host-memory tensor buffer (no copies), run.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "backend.h"
#include "litert_c_api.h"

namespace stretch {
namespace backends {

struct LiteRtRequest {
  int accelerators = 0;  // kLiteRtHwAccelerator* bits
  // Opaque options: (identifier, TOML text), the form every LiteRT accelerator reads its options in
  // ("xnnpack", "gpu_options", "qualcomm", as LiteRT's accelerators read them). libLiteRt.so does not export the
  // Lrt* builders of these payloads, so the backends write the TOML themselves.
  std::vector<std::pair<std::string, std::string>> payloads;
  // The accelerator must take every op: LiteRtCompiledModelIsNonCpuFullyAccelerated, not IsFullyAccelerated,
  // which also says true when the CPU ran part of it (litert_compiled_model.h).
  bool whole_partition = false;
};

// Compilation options carrying the request, or null when LiteRT refuses them. Never destroyed by this
// runtime: which side owns them after LiteRtCreateCompiledModel differs between LiteRT releases.
LiteRtOptions MakeOptions(const LiteRtRequest& request);

// The payloads as the report shows them: "identifier: key = value; key = value".
std::string Describe(const LiteRtRequest& request);

// A LiteRT environment with a backend's options (e.g. the NPU's dispatch library directory), created on first
// use and destroyed with its owner, after the executors compiled in it.
class Environment {
 public:
  Environment() = default;
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;
  ~Environment();
  // The environment; null with *why set when LiteRT cannot create it. `options` is used on the first call only.
  LiteRtEnvironment Get(const std::vector<LiteRtEnvOption>& options, std::string* why);

 private:
  LiteRtEnvironment env_ = nullptr;
  std::string error_;
  bool tried_ = false;
};

// Compiles job.model for the request in `env` and binds it to the job's slots; `accelerator` names it in the
// report. A Prepared without executor says why (LiteRT's status, or not the whole partition).
Prepared PrepareLiteRt(LiteRtEnvironment env, const Job& job, const LiteRtRequest& request, const std::string& accelerator);

// A backend whose accelerator LiteRT drives in an environment without options (cpu, gpu): `request` builds the
// compilation request from a partition's manifest entry, `accelerator` names what runs it in the report.
std::unique_ptr<Backend> MakeLiteRtBackend(LiteRtRequest (*request)(const Partition&), std::string (*accelerator)(const Partition&));

// The requests the LiteRT backends build from a partition's manifest entry (cpu.cc, gpu.cc, npu.cc), and the
// NPU's environment options; exposed for the tests, which read them back from the LiteRT objects.
LiteRtRequest CpuRequest(const Partition& q);
LiteRtRequest GpuRequest(const Partition& q);
LiteRtRequest NpuRequest(const Partition& q);
// The NPU backend's environment options; `storage` keeps the strings they point to.
std::vector<LiteRtEnvOption> NpuEnvironmentOptions(const Partition& q, std::vector<std::string>* storage);

}  // namespace backends
}  // namespace stretch
