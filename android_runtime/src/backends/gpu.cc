// The GPU backend: LiteRT's GPU accelerator (ML Drift; OpenCL on Android when libLiteRtOpenClAccelerator.so /
// libLiteRtGpuAccelerator.so is next to libLiteRt.so), alone in the accelerator set so that a partition it
// cannot take whole runs its fallback instead of a CPU/GPU mix. The manifest's options reach the accelerator
// as its "gpu_options" TOML payload (as LiteRT's GPU accelerator reads it: identifier "gpu_options", keys
// `precision` and `backend`, integer enums).
#include "backend.h"
#include "litert.h"

namespace stretch {
namespace backends {

namespace {

// kLiteRtDelegatePrecision* (litert_common.h): Default 0, Fp16 1, Fp32 2.
const std::vector<std::string> kPrecisions = {"default", "fp16", "fp32"};
// kLiteRtGpuBackend* (litert_common.h): Automatic 0, OpenCl 1, WebGpu 2, OpenGl 3.
const std::vector<std::string> kGpuApis = {"automatic", "opencl", "webgpu", "opengl"};

struct GpuOptions {
  std::string precision, api;
  int precision_code = 0, api_code = 0;
};

// max_delegated_partitions is not a LiteRT GPU option: the whole-partition check below is stricter (one
// delegated partition covering every op, or the fallback).
GpuOptions ReadGpuOptions(const Partition& q) {
  GpuOptions o;
  o.precision = StringOption(q, "precision", "default");
  o.precision_code = EnumOption(q, "precision", o.precision, kPrecisions);
  o.api = StringOption(q, "backend", "automatic");
  o.api_code = EnumOption(q, "backend", o.api, kGpuApis);
  return o;
}

std::string GpuAccelerator(const Partition& q) {
  GpuOptions o = ReadGpuOptions(q);
  return "LiteRT GPU accelerator (" + o.api + ", " + o.precision + ")";
}

}  // namespace

LiteRtRequest GpuRequest(const Partition& q) {
  GpuOptions o = ReadGpuOptions(q);
  LiteRtRequest r;
  r.accelerators = kLiteRtHwAcceleratorGpu;
  r.payloads = {{"gpu_options", "precision = " + std::to_string(o.precision_code) + "\nbackend = " + std::to_string(o.api_code) + "\n"}};
  r.whole_partition = true;
  return r;
}

std::unique_ptr<Backend> MakeGpuBackend() { return MakeLiteRtBackend(GpuRequest, GpuAccelerator); }

}  // namespace backends
}  // namespace stretch
