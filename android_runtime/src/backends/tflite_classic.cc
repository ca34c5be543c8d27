#include "tflite_classic.h"

#include <dlfcn.h>

#include <cstring>

namespace stretch {
namespace backends {

namespace {

struct Symbol {
  const char* name;
  void* slot;  // the address of a function pointer member
};

// Opens the first of `names` that the dynamic linker finds and that has every symbol, resolving each into its
// slot; otherwise returns false with *why saying, per name, the dlerror() text or the missing symbol.
bool Open(const std::vector<const char*>& names, const std::vector<Symbol>& symbols, LoadedLibrary* lib, std::string* why) {
  std::string reasons;
  for (const char* name : names) {
    dlerror();
    void* h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      const char* e = dlerror();
      reasons += (reasons.empty() ? "" : "; ") + std::string(e ? e : name);
      continue;
    }
    const char* missing = nullptr;
    void* first = nullptr;
    for (const Symbol& s : symbols) {
      void* f = dlsym(h, s.name);
      if (!f) {
        missing = s.name;
        break;
      }
      if (!first) first = f;
      std::memcpy(s.slot, &f, sizeof f);  // object pointer -> the function pointer of the declared prototype
    }
    if (missing) {
      reasons += (reasons.empty() ? "" : "; ") + std::string(name) + " lacks " + missing;
      dlclose(h);
      continue;
    }
    lib->handle = h;
    Dl_info info;
    lib->path = dladdr(first, &info) && info.dli_fname ? info.dli_fname : name;
    return true;
  }
  *why = reasons;
  return false;
}

}  // namespace

std::unique_ptr<ClassicApi> LoadClassicApi(std::string* why) {
  auto a = std::make_unique<ClassicApi>();
  std::vector<Symbol> s = {
      {"TfLiteVersion", &a->Version},
      {"TfLiteModelCreate", &a->ModelCreate},
      {"TfLiteModelDelete", &a->ModelDelete},
      {"TfLiteInterpreterOptionsCreate", &a->OptionsCreate},
      {"TfLiteInterpreterOptionsDelete", &a->OptionsDelete},
      {"TfLiteInterpreterOptionsSetNumThreads", &a->OptionsSetNumThreads},
      {"TfLiteInterpreterOptionsAddDelegate", &a->OptionsAddDelegate},
      {"TfLiteInterpreterCreate", &a->InterpreterCreate},
      {"TfLiteInterpreterDelete", &a->InterpreterDelete},
      {"TfLiteInterpreterAllocateTensors", &a->AllocateTensors},
      {"TfLiteInterpreterInvoke", &a->Invoke},
      {"TfLiteInterpreterGetInputTensorCount", &a->InputCount},
      {"TfLiteInterpreterGetInputTensor", &a->InputTensor},
      {"TfLiteInterpreterGetOutputTensorCount", &a->OutputCount},
      {"TfLiteInterpreterGetOutputTensor", &a->OutputTensor},
      {"TfLiteTensorType", &a->TensorType},
      {"TfLiteTensorNumDims", &a->TensorNumDims},
      {"TfLiteTensorDim", &a->TensorDim},
      {"TfLiteTensorByteSize", &a->TensorByteSize},
      {"TfLiteTensorName", &a->TensorName},
      {"TfLiteTensorCopyFromBuffer", &a->CopyFromBuffer},
      {"TfLiteTensorCopyToBuffer", &a->CopyToBuffer},
  };
  if (!Open({"libtensorflowlite_c.so", "libtensorflowlite_jni.so"}, s, &a->lib, why)) return nullptr;
  return a;
}

std::unique_ptr<HexagonApi> LoadHexagonApi(std::string* why) {
  auto a = std::make_unique<HexagonApi>();
  std::vector<Symbol> s = {
      {"TfLiteHexagonInitWithPath", &a->InitWithPath},
      {"TfLiteHexagonDelegateOptionsDefault", &a->OptionsDefault},
      {"TfLiteHexagonDelegateCreate", &a->DelegateCreate},
      {"TfLiteHexagonDelegateDelete", &a->DelegateDelete},
      {"TfLiteHexagonTearDown", &a->TearDown},
  };
  if (!Open({"libtensorflowlite_hexagon_jni.so"}, s, &a->lib, why)) return nullptr;
  return a;
}

}  // namespace backends
}  // namespace stretch
