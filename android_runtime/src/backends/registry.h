// The processor kinds this runtime can execute, one backend each: the only table that maps the manifest's
// `processor` and `delegate` strings to code. The loader (bundle.cc) checks a bundle against it and the runtime
// asks it for the backend of each partition; neither spells a processor's name.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace stretch {
namespace backends {

class Backend;

struct BackendInfo {
  const char* processor;  // manifest partition.processor and lane.processor
  const char* delegate;   // manifest partition.delegate (and fallback.delegate)
  // The partition precisions it runs (rule precision); empty = every precision the schema knows.
  std::vector<std::string> precisions;
  bool fallback_target;  // a partition's fallback may name it (rule delegate)
  // A new backend for one Runtime; it may hold process-wide state (environments, loaded libraries) until
  // destroyed, after every executor it made.
  std::unique_ptr<Backend> (*create)();
};

const std::vector<BackendInfo>& All();
const BackendInfo* ByProcessor(const std::string& processor);  // null: unknown
const BackendInfo* ByDelegate(const std::string& delegate);    // null: unknown

}  // namespace backends
}  // namespace stretch
