// The part of the LiteRT 2.x C API (libLiteRt.so) that stretch_runtime uses, declared here because the
// ai-edge-litert wheel ships the library without headers. Checked against ai-edge-litert 2.3.0 with
// `nm -D libLiteRt.so` and by the host tests. The TfLite* interpreter C API (TfLiteInterpreterCreate, custom
// allocations) is NOT exported by that library; the LiteRT CompiledModel API with tensor buffers created over
// host memory is its zero-copy equivalent (README.md, "LiteRT API").
#pragma once

#include <stddef.h>
#include <stdint.h>

extern "C" {

typedef int LiteRtStatus;  // 0 = ok
enum { kLiteRtStatusOk = 0 };

typedef struct LiteRtEnvironmentT* LiteRtEnvironment;
typedef struct LiteRtModelT* LiteRtModel;
typedef struct LiteRtOptionsT* LiteRtOptions;
typedef struct LiteRtOpaqueOptionsT* LiteRtOpaqueOptions;
typedef struct LiteRtCompiledModelT* LiteRtCompiledModel;
typedef struct LiteRtTensorBufferT* LiteRtTensorBuffer;
typedef struct LiteRtSignatureT* LiteRtSignature;
typedef struct LiteRtTensorT* LiteRtTensor;
typedef struct LiteRtSubgraphT* LiteRtSubgraph;
typedef struct LiteRtOpT* LiteRtOp;
typedef size_t LiteRtParamIndex;
typedef int LiteRtOpCode;  // the TFLite builtin operator code
typedef int LiteRtHwAcceleratorSet;

enum {
  kLiteRtHwAcceleratorNone = 0,
  kLiteRtHwAcceleratorCpu = 1,
  kLiteRtHwAcceleratorGpu = 2,
  kLiteRtHwAcceleratorNpu = 4,
};

// LiteRtRankedTensorType is passed through (filled by LiteRtGetRankedTensorType, given to
// LiteRtCreateTensorBufferFromHostMemory) and read only through RankedTypeHead below, so it is kept opaque and
// generously sized (the real struct is 72 bytes in 2.x: element type + rank/strides flags + 8 dims + 8 strides).
struct alignas(8) LiteRtRankedTensorTypeStorage {
  unsigned char bytes[512];
};

// The head of LiteRtRankedTensorType, the same in every LiteRT 2.x release: the element type (TfLiteType
// values), then the layout, whose first 32 bits hold the rank in their low 7 bits (older releases keep a
// has_strides bit above it), then up to 8 dimensions.
struct RankedTypeHead {
  int32_t element_type;
  uint32_t rank_bits;
  int32_t dims[8];
};
static_assert(sizeof(RankedTypeHead) <= sizeof(LiteRtRankedTensorTypeStorage), "storage too small");

typedef void (*LiteRtHostMemoryDeallocator)(void* addr);

// Environment options (litert/c/litert_any.h, litert/c/litert_environment_options.h; layout asserted there:
// LiteRtAny is 16 bytes, LiteRtEnvOption 24 with the value at offset 8 on 64-bit targets).
enum { kLiteRtAnyTypeInt = 2, kLiteRtAnyTypeString = 8 };
typedef struct {
  int type;
  union {
    bool bool_value;
    int64_t int_value;
    double real_value;
    const char* str_value;
    const void* ptr_value;
  };
} LiteRtAny;
// litert/c/litert_environment_options.h (LiteRT's C API)
enum { kLiteRtEnvOptionTagCompilerPluginLibraryDir = 0, kLiteRtEnvOptionTagDispatchLibraryDir = 1, kLiteRtEnvOptionTagCompilerCacheDir = 18 };
typedef struct {
  int tag;
  LiteRtAny value;
} LiteRtEnvOption;
#if defined(__SIZEOF_POINTER__) && __SIZEOF_POINTER__ == 8
static_assert(sizeof(LiteRtAny) == 16 && sizeof(LiteRtEnvOption) == 24, "LiteRtEnvOption layout");
#endif

LiteRtStatus LiteRtCreateEnvironment(int num_options, const LiteRtEnvOption* options, LiteRtEnvironment* environment);
void LiteRtDestroyEnvironment(LiteRtEnvironment environment);

LiteRtStatus LiteRtCreateModelFromBuffer(LiteRtEnvironment environment, const void* buffer_addr, size_t buffer_size,
                                         LiteRtModel* model);
void LiteRtDestroyModel(LiteRtModel model);
LiteRtStatus LiteRtGetNumModelSignatures(LiteRtModel model, LiteRtParamIndex* num_signatures);
LiteRtStatus LiteRtGetModelSignature(LiteRtModel model, LiteRtParamIndex signature_index, LiteRtSignature* signature);
LiteRtStatus LiteRtGetNumSignatureInputs(LiteRtSignature signature, LiteRtParamIndex* num_inputs);
LiteRtStatus LiteRtGetNumSignatureOutputs(LiteRtSignature signature, LiteRtParamIndex* num_outputs);
LiteRtStatus LiteRtGetSignatureInputName(LiteRtSignature signature, LiteRtParamIndex input_idx, const char** name);
LiteRtStatus LiteRtGetSignatureOutputName(LiteRtSignature signature, LiteRtParamIndex output_idx, const char** name);
LiteRtStatus LiteRtGetSignatureInputTensorByIndex(LiteRtSignature signature, LiteRtParamIndex input_idx,
                                                  LiteRtTensor* tensor);
LiteRtStatus LiteRtGetSignatureOutputTensorByIndex(LiteRtSignature signature, LiteRtParamIndex output_idx,
                                                   LiteRtTensor* tensor);
LiteRtStatus LiteRtGetRankedTensorType(LiteRtTensor tensor, LiteRtRankedTensorTypeStorage* ranked_tensor_type);
LiteRtStatus LiteRtGetMainModelSubgraphIndex(LiteRtModel model, LiteRtParamIndex* main_subgraph_index);
LiteRtStatus LiteRtGetModelSubgraph(LiteRtModel model, LiteRtParamIndex subgraph_index, LiteRtSubgraph* subgraph);
LiteRtStatus LiteRtGetNumSubgraphOps(LiteRtSubgraph subgraph, LiteRtParamIndex* num_ops);
LiteRtStatus LiteRtGetSubgraphOp(LiteRtSubgraph subgraph, LiteRtParamIndex op_index, LiteRtOp* op);
LiteRtStatus LiteRtGetOpCode(LiteRtOp op, LiteRtOpCode* code);

LiteRtStatus LiteRtCreateOptions(LiteRtOptions* options);
void LiteRtDestroyOptions(LiteRtOptions options);
LiteRtStatus LiteRtSetOptionsHardwareAccelerators(LiteRtOptions options, LiteRtHwAcceleratorSet accelerators);
LiteRtStatus LiteRtAddOpaqueOptions(LiteRtOptions options, LiteRtOpaqueOptions opaque_options);
LiteRtStatus LiteRtCreateOpaqueOptions(const char* payload_identifier, void* payload_data,
                                       void (*payload_destructor)(void* payload_data), LiteRtOpaqueOptions* options);
LiteRtStatus LiteRtGetOpaqueOptions(LiteRtOptions options, LiteRtOpaqueOptions* opaque_options);
LiteRtStatus LiteRtFindOpaqueOptionsData(LiteRtOpaqueOptions options, const char* payload_identifier, void** payload_data);

LiteRtStatus LiteRtCreateCompiledModel(LiteRtEnvironment environment, LiteRtModel model, LiteRtOptions options,
                                       LiteRtCompiledModel* compiled_model);
void LiteRtDestroyCompiledModel(LiteRtCompiledModel compiled_model);
LiteRtStatus LiteRtCompiledModelIsFullyAccelerated(LiteRtCompiledModel compiled_model, bool* fully_accelerated);
// "100% delegated on GPU or NPU with zero CPU execution" (litert_compiled_model.h); IsFullyAccelerated also
// says true when only a CPU accelerator ran the model.
LiteRtStatus LiteRtCompiledModelIsNonCpuFullyAccelerated(LiteRtCompiledModel compiled_model, bool* non_cpu_fully_accelerated);
LiteRtStatus LiteRtRunCompiledModel(LiteRtCompiledModel compiled_model, LiteRtParamIndex signature_index,
                                    size_t num_input_buffers, LiteRtTensorBuffer* input_buffers,
                                    size_t num_output_buffers, LiteRtTensorBuffer* output_buffers);

LiteRtStatus LiteRtCreateTensorBufferFromHostMemory(const LiteRtRankedTensorTypeStorage* tensor_type,
                                                    void* host_buffer_addr, size_t host_buffer_size,
                                                    LiteRtHostMemoryDeallocator deallocator,
                                                    LiteRtTensorBuffer* buffer);
void LiteRtDestroyTensorBuffer(LiteRtTensorBuffer buffer);
LiteRtStatus LiteRtGetTensorBufferSize(LiteRtTensorBuffer buffer, size_t* size);

}  // extern "C"
