// What the two test doubles agree on beyond android_runtime/src/backends/tflite_c_api.h: the signature of
// TfLiteContext::ReplaceNodeSubsetsWithDelegateKernels (the real one takes the whole TfLiteRegistration by
// value; the doubles pass the head the runtime reads).
#pragma once

#include "backends/tflite_c_api.h"

namespace stretch {
namespace doubles {

using namespace stretch::tflite_c;

typedef TfLiteStatus (*ReplaceNodeSubsetsFn)(TfLiteContext* context, TfLiteRegistrationHead registration, const TfLiteIntArray* nodes,
                                             TfLiteDelegate* delegate);

// The context's ReplaceNodeSubsetsWithDelegateKernels (at its real offset in TfLiteContextHead).
inline ReplaceNodeSubsetsFn ReplaceOf(TfLiteContext* c) {
  return reinterpret_cast<ReplaceNodeSubsetsFn>(reinterpret_cast<TfLiteContextHead*>(c)->ReplaceNodeSubsetsWithDelegateKernels);
}

}  // namespace doubles
}  // namespace stretch
