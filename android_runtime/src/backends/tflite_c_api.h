// The part of the classic TensorFlow Lite C API and of the Hexagon delegate's C API that the DSP backend loads
// at run time with dlopen (no TFLite headers or libraries are needed to build the runtime). Prototypes from
// tflite/core/c/c_api.h and tflite/delegates/hexagon/hexagon_delegate.h (LiteRT @f67457790, the same names as
// tensorflow/lite/...; ../shared/facts/tflite-delegates.md §1). The test doubles in tests/android_runtime/doubles/
// implement exactly these.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace stretch {
namespace tflite_c {

typedef int TfLiteStatus;  // kTfLiteOk = 0
typedef int TfLiteType;    // kTfLiteFloat32 = 1, kTfLiteInt8 = 9, ... (the values LiteRT's element types share)
enum { kTfLiteOk = 0, kTfLiteError = 1 };
enum { kTfLiteBuiltinDelegate = 51 };  // the builtin code of a delegate's kernel (BuiltinOperator_DELEGATE)

struct TfLiteModel;
struct TfLiteInterpreterOptions;
struct TfLiteInterpreter;
struct TfLiteTensor;
struct TfLiteNode;
struct TfLiteContext;

struct TfLiteIntArray {
  int size;
  int data[1];  // `size` entries (a flexible array in common.h)
};

// The fields of TfLiteContext and TfLiteRegistration (tflite/core/c/common.h) that the DSP backend reads,
// at their offsets: the struct heads have kept this order since TFLite 1.x ("semi-ABI stable").
struct TfLiteRegistrationHead {
  void* init;
  void* free;
  void* prepare;
  void* invoke;
  void* profiling_string;
  int32_t builtin_code;
};
struct TfLiteContextHead {
  size_t tensors_size;
  TfLiteStatus (*GetExecutionPlan)(TfLiteContext* context, TfLiteIntArray** execution_plan);
  void* tensors;
  void* impl_;
  void* ResizeTensor;
  void* ReportError;
  void* AddTensors;
  TfLiteStatus (*GetNodeAndRegistration)(TfLiteContext* context, int node_index, TfLiteNode** node, TfLiteRegistrationHead** registration);
  void* ReplaceNodeSubsetsWithDelegateKernels;  // takes a whole TfLiteRegistration by value; never called here
};

struct TfLiteDelegate {
  void* data_;
  TfLiteStatus (*Prepare)(TfLiteContext* context, TfLiteDelegate* delegate);
  TfLiteStatus (*CopyFromBufferHandle)(TfLiteContext* context, TfLiteDelegate* delegate, int buffer_handle, TfLiteTensor* tensor);
  TfLiteStatus (*CopyToBufferHandle)(TfLiteContext* context, TfLiteDelegate* delegate, int buffer_handle, TfLiteTensor* tensor);
  void (*FreeBufferHandle)(TfLiteContext* context, TfLiteDelegate* delegate, int* handle);
  int64_t flags;
  void* opaque_delegate_builder;  // absent in releases before 2.12; never read here
};

// hexagon_delegate.h; 48 bytes on LP64 (measured).
struct TfLiteHexagonDelegateOptions {
  int debug_level;
  int powersave_level;  // 0 = high performance; hexagon_nn votes the lowest clocks from 255 on
  bool print_graph_profile;
  bool print_graph_debug;
  int max_delegated_partitions;  // <= 0: 4
  int min_nodes_per_partition;   // <= 0: 2
  bool enable_dynamic_batch_size;
  int max_batch_size;
  TfLiteIntArray* input_batch_dimensions;
  TfLiteIntArray* output_batch_dimensions;
};
#if defined(__SIZEOF_POINTER__) && __SIZEOF_POINTER__ == 8
static_assert(sizeof(TfLiteHexagonDelegateOptions) == 48, "TfLiteHexagonDelegateOptions layout");
static_assert(offsetof(TfLiteContextHead, GetNodeAndRegistration) == 56, "TfLiteContext layout");
static_assert(offsetof(TfLiteRegistrationHead, builtin_code) == 40, "TfLiteRegistration layout");
static_assert(offsetof(TfLiteDelegate, flags) == 40, "TfLiteDelegate layout");
#endif

// Function types, one per symbol the backend resolves.
typedef const char* (*TfLiteVersionFn)();
typedef TfLiteModel* (*TfLiteModelCreateFn)(const void* model_data, size_t model_size);
typedef void (*TfLiteModelDeleteFn)(TfLiteModel* model);
typedef TfLiteInterpreterOptions* (*TfLiteInterpreterOptionsCreateFn)();
typedef void (*TfLiteInterpreterOptionsDeleteFn)(TfLiteInterpreterOptions* options);
typedef void (*TfLiteInterpreterOptionsSetNumThreadsFn)(TfLiteInterpreterOptions* options, int32_t num_threads);
typedef void (*TfLiteInterpreterOptionsAddDelegateFn)(TfLiteInterpreterOptions* options, TfLiteDelegate* delegate);
typedef TfLiteInterpreter* (*TfLiteInterpreterCreateFn)(const TfLiteModel* model, const TfLiteInterpreterOptions* options);
typedef void (*TfLiteInterpreterDeleteFn)(TfLiteInterpreter* interpreter);
typedef TfLiteStatus (*TfLiteInterpreterAllocateTensorsFn)(TfLiteInterpreter* interpreter);
typedef TfLiteStatus (*TfLiteInterpreterInvokeFn)(TfLiteInterpreter* interpreter);
typedef int32_t (*TfLiteInterpreterGetInputTensorCountFn)(const TfLiteInterpreter* interpreter);
typedef TfLiteTensor* (*TfLiteInterpreterGetInputTensorFn)(const TfLiteInterpreter* interpreter, int32_t input_index);
typedef int32_t (*TfLiteInterpreterGetOutputTensorCountFn)(const TfLiteInterpreter* interpreter);
typedef const TfLiteTensor* (*TfLiteInterpreterGetOutputTensorFn)(const TfLiteInterpreter* interpreter, int32_t output_index);
typedef TfLiteType (*TfLiteTensorTypeFn)(const TfLiteTensor* tensor);
typedef int32_t (*TfLiteTensorNumDimsFn)(const TfLiteTensor* tensor);
typedef int32_t (*TfLiteTensorDimFn)(const TfLiteTensor* tensor, int32_t dim_index);
typedef size_t (*TfLiteTensorByteSizeFn)(const TfLiteTensor* tensor);
typedef const char* (*TfLiteTensorNameFn)(const TfLiteTensor* tensor);
typedef TfLiteStatus (*TfLiteTensorCopyFromBufferFn)(TfLiteTensor* tensor, const void* input_data, size_t input_data_size);
typedef TfLiteStatus (*TfLiteTensorCopyToBufferFn)(const TfLiteTensor* output_tensor, void* output_data, size_t output_data_size);

typedef void (*TfLiteHexagonInitWithPathFn)(const char* lib_directory_path);
typedef TfLiteHexagonDelegateOptions (*TfLiteHexagonDelegateOptionsDefaultFn)();
typedef TfLiteDelegate* (*TfLiteHexagonDelegateCreateFn)(const TfLiteHexagonDelegateOptions* options);
typedef void (*TfLiteHexagonDelegateDeleteFn)(TfLiteDelegate* delegate);
typedef void (*TfLiteHexagonTearDownFn)();

}  // namespace tflite_c
}  // namespace stretch
