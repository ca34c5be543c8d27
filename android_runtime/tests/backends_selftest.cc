// Checks of the backends that need no bundle: the options each LiteRT backend builds from a manifest entry, read
// back from the LiteRT objects it hands to LiteRtCreateCompiledModel / LiteRtCreateEnvironment (the GPU's
// precision and API, the NPU's performance mode and dispatch directory, the CPU's threads); option values of the
// wrong kind or an unknown word refused as bad bundles; the registry's table. Prints one line per check.
#include <cstdio>
#include <cstring>
#include <string>

#include "backends/backend.h"
#include "backends/litert.h"
#include "backends/registry.h"

using namespace stretch;
using namespace stretch::backends;

static int failures = 0;
static void Check(bool ok, const std::string& what) {
  std::printf("%s: %s\n", ok ? "ok" : "FAIL", what.c_str());
  if (!ok) ++failures;
}

static Option Str(const std::string& s) {
  Option o;
  o.kind = ValueKind::String;
  o.string_value = s;
  return o;
}

// The TOML payload under `identifier` in the compilation options LiteRT gets for `request`.
static std::string Payload(const LiteRtRequest& request, const char* identifier) {
  LiteRtOptions options = MakeOptions(request);
  LiteRtOpaqueOptions opaque = nullptr;
  void* data = nullptr;
  if (!options || LiteRtGetOpaqueOptions(options, &opaque) != kLiteRtStatusOk ||
      LiteRtFindOpaqueOptionsData(opaque, identifier, &data) != kLiteRtStatusOk || !data)
    return "<none>";
  return static_cast<const char*>(data);
}

template <typename F>
static std::string Refusal(F f) {
  try {
    f();
  } catch (const BundleError& e) {
    return e.what();
  }
  return "<accepted>";
}

int main() {
  Partition gpu;
  gpu.name = "g";
  gpu.delegate_options = {{"backend", Str("opencl")}, {"precision", Str("fp16")}};
  Check(Payload(GpuRequest(gpu), "gpu_options") == "precision = 1\nbackend = 1\n", "gpu fp16 reaches gpu_options as precision = 1");
  Check(GpuRequest(gpu).accelerators == kLiteRtHwAcceleratorGpu && GpuRequest(gpu).whole_partition, "gpu alone, whole partition");
  gpu.delegate_options["precision"] = Str("fp32");
  Check(Payload(GpuRequest(gpu), "gpu_options") == "precision = 2\nbackend = 1\n", "gpu fp32 reaches gpu_options as precision = 2");
  gpu.delegate_options["precision"] = Str("fp8");
  Check(Refusal([&] { GpuRequest(gpu); }).find("[schema] partition g: delegate option precision is fp8") == 0, "gpu precision fp8 refused");

  Partition cpu;
  cpu.threads = 3;
  Check(Payload(CpuRequest(cpu), "xnnpack") == "num_threads = 3\n", "cpu threads reach xnnpack");

  Partition npu;
  npu.name = "n";
  npu.delegate_options = {{"vendor", Str("qualcomm")}, {"soc_model", Str("SM8550")}, {"htp_performance_mode", Str("burst")},
                          {"dispatch_library_dir", Str("/data/local/tmp")}};
  Check(Payload(NpuRequest(npu), "qualcomm") == "htp_performance_mode = 2\n", "npu burst reaches qualcomm as htp_performance_mode = 2");
  Check(NpuRequest(npu).accelerators == kLiteRtHwAcceleratorNpu && NpuRequest(npu).whole_partition, "npu alone, whole partition");
  std::vector<std::string> storage;
  auto env = NpuEnvironmentOptions(npu, &storage);
  Check(env.size() == 3 && env[0].tag == kLiteRtEnvOptionTagDispatchLibraryDir && env[0].value.type == kLiteRtAnyTypeString &&
            std::strcmp(env[0].value.str_value, "/data/local/tmp") == 0,
        "npu dispatch_library_dir reaches the environment as DispatchLibraryDir");
  Check(env[1].tag == kLiteRtEnvOptionTagCompilerPluginLibraryDir && std::strcmp(env[1].value.str_value, "/data/local/tmp") == 0 &&
            env[2].tag == kLiteRtEnvOptionTagCompilerCacheDir && std::strcmp(env[2].value.str_value, "/data/local/tmp/compiler-cache") == 0,
        "npu: the compiler plugin next to the dispatch library, its cache beside it");
  Option level;
  level.kind = ValueKind::Int;
  level.int_value = 2;
  npu.delegate_options["htp_performance_mode"] = level;
  Check(Refusal([&] { NpuRequest(npu); }).find("[schema] partition n: delegate option htp_performance_mode must be a string") == 0,
        "npu performance mode of the wrong kind refused");

  int fallbacks = 0;
  for (const auto& b : All()) {
    fallbacks += b.fallback_target;
    Check(ByProcessor(b.processor) == &b && ByDelegate(b.delegate) == &b, std::string("registry: ") + b.processor + " <-> " + b.delegate);
  }
  Check(fallbacks == 1 && !ByDelegate("nnapi"), "registry: one fallback backend, unknown delegates unknown");
  if (failures == 0) std::printf("backends selftest: all checks passed\n");
  return failures ? 1 : 0;
}
