// TEST DOUBLE of libtensorflowlite_hexagon_jni.so (the TfLiteHexagon* C API of hexagon_delegate.h), built for
// the host tests only. It records every call and the options it is given, one line each, in the file
// $STRETCH_HEXAGON_DOUBLE_RECORD, and behaves as $STRETCH_HEXAGON_DOUBLE says:
//   whole (default)  TfLiteHexagonDelegateCreate returns a delegate whose Prepare takes every node of the plan
//   partial          ... whose Prepare leaves the last node of the plan to the CPU
//   unsupported      TfLiteHexagonDelegateCreate returns null, as the real one does without a usable DSP
// Built with STRETCH_DOUBLE_WITHOUT_CREATE it lacks TfLiteHexagonDelegateCreate (a library of another API).
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "doubles.h"

using namespace stretch::doubles;

namespace {

void Record(const char* format, ...) {
  const char* path = std::getenv("STRETCH_HEXAGON_DOUBLE_RECORD");
  if (!path) return;
  FILE* f = std::fopen(path, "a");
  if (!f) return;
  va_list args;
  va_start(args, format);
  std::vfprintf(f, format, args);
  va_end(args);
  std::fputc('\n', f);
  std::fclose(f);
}

std::string Mode() {
  const char* m = std::getenv("STRETCH_HEXAGON_DOUBLE");
  return m ? m : "whole";
}

TfLiteStatus Prepare(TfLiteContext* context, TfLiteDelegate* delegate) {
  auto* c = reinterpret_cast<TfLiteContextHead*>(context);
  TfLiteIntArray* plan = nullptr;
  if (c->GetExecutionPlan(context, &plan) != kTfLiteOk) return kTfLiteError;
  int take = Mode() == "partial" ? plan->size - 1 : plan->size;
  std::vector<int> nodes(1, take);
  nodes.insert(nodes.end(), plan->data, plan->data + take);
  Record("prepare nodes=%d delegated=%d", plan->size, take);
  TfLiteRegistrationHead reg{};
  return ReplaceOf(context)(context, reg, reinterpret_cast<const TfLiteIntArray*>(nodes.data()), delegate);
}

}  // namespace

extern "C" {

void TfLiteHexagonInitWithPath(const char* lib_directory_path) {
  Record("init_with_path %s", lib_directory_path ? lib_directory_path : "(null)");
  if (lib_directory_path) {  // what the real one does (hexagon_delegate.cc)
    std::string v = std::string(lib_directory_path) + ";/system/lib/rfsa/adsp;/system/vendor/lib/rfsa/adsp;/dsp";
    setenv("ADSP_LIBRARY_PATH", v.c_str(), 1);
  }
}

TfLiteHexagonDelegateOptions TfLiteHexagonDelegateOptionsDefault() { return TfLiteHexagonDelegateOptions{}; }

#ifndef STRETCH_DOUBLE_WITHOUT_CREATE
TfLiteDelegate* TfLiteHexagonDelegateCreate(const TfLiteHexagonDelegateOptions* o) {
  Record("create powersave_level=%d debug_level=%d max_delegated_partitions=%d min_nodes_per_partition=%d mode=%s", o->powersave_level,
         o->debug_level, o->max_delegated_partitions, o->min_nodes_per_partition, Mode().c_str());
  if (Mode() == "unsupported") return nullptr;
  auto* d = new TfLiteDelegate{};
  d->Prepare = Prepare;
  return d;
}
#endif

void TfLiteHexagonDelegateDelete(TfLiteDelegate* d) {
  Record("delete");
  delete d;
}

void TfLiteHexagonTearDown() { Record("teardown"); }

}  // extern "C"
