// The interface between the generic runtime and a processor backend: the runtime hands a backend one partition
// model bound to its arena slots (a Job); the backend prepares it for its accelerator and returns an Executor
// that runs it, or says why it cannot (the runtime then prepares the partition's fallback with the fallback's
// backend). A backend reads its manifest options in one place (its Read*Options function).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bundle.h"

namespace stretch {
namespace backends {

// One boundary tensor of the partition: the model tensor the manifest binds and its slot's arena bytes.
struct Bound {
  std::string tensor;
  const Slot* slot = nullptr;  // dtype, shape, size
  uint8_t* data = nullptr;     // the slot's bytes in the arena (64-byte aligned)
};

struct Job {
  const Partition* partition = nullptr;     // the manifest entry (delegate options, threads)
  const std::vector<uint8_t>* model = nullptr;  // the checked model file; outlives every executor
  std::string file;                         // its path in the bundle, for messages
  std::vector<Bound> inputs, outputs;       // in the manifest's binding order

  // The binding of the model's input (or output) `name`; throws BundleError (partition-tensors) when the
  // manifest binds none.
  const Bound& Find(bool input, const std::string& name) const;
  // Throws BundleError (partition-tensors) unless the model has as many inputs and outputs as the manifest binds.
  void CheckCounts(size_t num_inputs, size_t num_outputs) const;
  // Throws BundleError (partition-tensors) unless a model tensor of TfLiteType `type` and shape `dims` is the
  // tensor of b's slot.
  void CheckType(const Bound& b, int32_t type, const std::vector<int64_t>& dims) const;
};

class Executor {
 public:
  virtual ~Executor() = default;
  // Runs the partition once over its slots; returns "" or what failed. Adds every byte it copies (staging
  // between the arena and memory the accelerator owns) to *bytes_copied.
  virtual std::string Run(uint64_t* bytes_copied) = 0;
};

struct Prepared {
  std::unique_ptr<Executor> executor;  // null: the backend cannot run this partition (why_not)
  std::string accelerator;             // what runs it, as the report names it
  std::string options;                 // what the backend gave its accelerator, one line
  std::string why_not;
};

class Backend {
 public:
  virtual ~Backend() = default;
  // Prepares job.model on this backend's accelerator. Throws BundleError when the bundle is wrong for any
  // backend (model tensors that are not the manifest's, option values of the wrong type); returns a Prepared
  // without executor when this accelerator cannot run it here.
  virtual Prepared Prepare(const Job& job) = 0;
};

// The manifest's delegate option `key` of partition q; a missing key gives `fallback`, a value of another
// kind throws BundleError (schema) naming the partition and the key.
int64_t IntOption(const Partition& q, const std::string& key, int64_t fallback);
std::string StringOption(const Partition& q, const std::string& key, const std::string& fallback);

// Index of `value` in `names` (the value names of an accelerator enum, in enum order); throws BundleError
// (schema) when the option holds another word.
int EnumOption(const Partition& q, const std::string& key, const std::string& value, const std::vector<std::string>& names);

// The backends (one module each, src/backends/<processor>.cc).
std::unique_ptr<Backend> MakeCpuBackend();
std::unique_ptr<Backend> MakeGpuBackend();
std::unique_ptr<Backend> MakeDspBackend();
std::unique_ptr<Backend> MakeNpuBackend();

}  // namespace backends
}  // namespace stretch
