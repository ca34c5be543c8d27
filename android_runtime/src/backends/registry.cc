#include "registry.h"

#include "backend.h"

namespace stretch {
namespace backends {

const std::vector<BackendInfo>& All() {
  // The same processors, delegates and precision rule as stretchc.bundle (validate.py: rules delegate and
  // precision); the Hexagon DSP takes quantized partitions only (../shared/facts/tflite-delegates.md §1).
  static const std::vector<BackendInfo> kAll = {
      {"cpu", "xnnpack", {}, true, MakeCpuBackend},
      {"gpu", "gpu", {}, false, MakeGpuBackend},
      {"dsp", "hexagon", {"int8", "uint8"}, false, MakeDspBackend},
      {"npu", "litert-npu", {}, false, MakeNpuBackend},
  };
  return kAll;
}

const BackendInfo* ByProcessor(const std::string& processor) {
  for (const auto& b : All())
    if (processor == b.processor) return &b;
  return nullptr;
}

const BackendInfo* ByDelegate(const std::string& delegate) {
  for (const auto& b : All())
    if (delegate == b.delegate) return &b;
  return nullptr;
}

}  // namespace backends
}  // namespace stretch
