// Loading the classic TFLite C API and the Hexagon delegate at run time (dlopen + dlsym), for the DSP backend:
// LiteRT 2.x has no Hexagon delegate, and libLiteRt.so exports none of the TfLite* interpreter functions.
// The libraries are looked up by name through the dynamic linker (LD_LIBRARY_PATH, the app's lib dir):
// the C API in libtensorflowlite_c.so (//tflite/c:tensorflowlite_c, version script `global: TfLite*`) or the
// AAR's libtensorflowlite_jni.so (whose script also exports TfLite*); the TfLiteHexagon* functions in
// libtensorflowlite_hexagon_jni.so (there is no libhexagon_delegate.so), which itself loads
// libhexagon_interface.so and, through FastRPC, the skel from ADSP_LIBRARY_PATH
// (../shared/facts/tflite-delegates.md §1.1).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tflite_c_api.h"

namespace stretch {
namespace backends {

// A library opened with dlopen and the symbols resolved in it; the library stays loaded for the process.
struct LoadedLibrary {
  void* handle = nullptr;
  std::string path;  // the file the dynamic linker picked (dladdr)
};

struct ClassicApi {
  LoadedLibrary lib;
  tflite_c::TfLiteVersionFn Version = nullptr;
  tflite_c::TfLiteModelCreateFn ModelCreate = nullptr;
  tflite_c::TfLiteModelDeleteFn ModelDelete = nullptr;
  tflite_c::TfLiteInterpreterOptionsCreateFn OptionsCreate = nullptr;
  tflite_c::TfLiteInterpreterOptionsDeleteFn OptionsDelete = nullptr;
  tflite_c::TfLiteInterpreterOptionsSetNumThreadsFn OptionsSetNumThreads = nullptr;
  tflite_c::TfLiteInterpreterOptionsAddDelegateFn OptionsAddDelegate = nullptr;
  tflite_c::TfLiteInterpreterCreateFn InterpreterCreate = nullptr;
  tflite_c::TfLiteInterpreterDeleteFn InterpreterDelete = nullptr;
  tflite_c::TfLiteInterpreterAllocateTensorsFn AllocateTensors = nullptr;
  tflite_c::TfLiteInterpreterInvokeFn Invoke = nullptr;
  tflite_c::TfLiteInterpreterGetInputTensorCountFn InputCount = nullptr;
  tflite_c::TfLiteInterpreterGetInputTensorFn InputTensor = nullptr;
  tflite_c::TfLiteInterpreterGetOutputTensorCountFn OutputCount = nullptr;
  tflite_c::TfLiteInterpreterGetOutputTensorFn OutputTensor = nullptr;
  tflite_c::TfLiteTensorTypeFn TensorType = nullptr;
  tflite_c::TfLiteTensorNumDimsFn TensorNumDims = nullptr;
  tflite_c::TfLiteTensorDimFn TensorDim = nullptr;
  tflite_c::TfLiteTensorByteSizeFn TensorByteSize = nullptr;
  tflite_c::TfLiteTensorNameFn TensorName = nullptr;
  tflite_c::TfLiteTensorCopyFromBufferFn CopyFromBuffer = nullptr;
  tflite_c::TfLiteTensorCopyToBufferFn CopyToBuffer = nullptr;
};

struct HexagonApi {
  LoadedLibrary lib;
  tflite_c::TfLiteHexagonInitWithPathFn InitWithPath = nullptr;
  tflite_c::TfLiteHexagonDelegateOptionsDefaultFn OptionsDefault = nullptr;
  tflite_c::TfLiteHexagonDelegateCreateFn DelegateCreate = nullptr;
  tflite_c::TfLiteHexagonDelegateDeleteFn DelegateDelete = nullptr;
  tflite_c::TfLiteHexagonTearDownFn TearDown = nullptr;
};

// The first library of `names` the dynamic linker finds, with every symbol resolved; null with *why set
// ("libX.so not found: <dlerror>", "libX.so lacks SYMBOL").
std::unique_ptr<ClassicApi> LoadClassicApi(std::string* why);
std::unique_ptr<HexagonApi> LoadHexagonApi(std::string* why);

}  // namespace backends
}  // namespace stretch
