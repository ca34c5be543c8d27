// The CPU backend: LiteRT's CPU accelerator (XNNPACK) with the manifest's thread count. It never declines a
// partition LiteRT can load, so it is what fallbacks run on.
#include "backend.h"
#include "litert.h"

namespace stretch {
namespace backends {

namespace {

struct CpuOptions {
  int64_t threads = 1;
};

CpuOptions ReadCpuOptions(const Partition& q) {
  CpuOptions o;
  o.threads = q.threads;
  return o;
}

std::string CpuAccelerator(const Partition& q) {
  return "LiteRT CPU accelerator (XNNPACK, " + std::to_string(ReadCpuOptions(q).threads) + " threads)";
}

}  // namespace

LiteRtRequest CpuRequest(const Partition& q) {
  CpuOptions o = ReadCpuOptions(q);
  LiteRtRequest r;
  r.accelerators = kLiteRtHwAcceleratorCpu;
  // XNNPACK's options travel as TOML under the "xnnpack" identifier (litert_cpu_options.cc).
  r.payloads = {{"xnnpack", "num_threads = " + std::to_string(o.threads) + "\n"}};
  return r;
}

std::unique_ptr<Backend> MakeCpuBackend() { return MakeLiteRtBackend(CpuRequest, CpuAccelerator); }

}  // namespace backends
}  // namespace stretch
