// The NPU backend: LiteRT's NPU accelerator, which wraps the vendor's dispatch library (Qualcomm:
// libLiteRtDispatch_Qualcomm.so over QNN's libQnnHtp.so, as LiteRT's sources load them). LiteRT registers that
// accelerator only when the environment names the directory holding the dispatch library
// (kLiteRtEnvOptionTagDispatchLibraryDir; without it "Dispatch library directory is not set"), so each
// dispatch_library_dir gets its own environment. The partition must run on the NPU whole
// (LiteRtCompiledModelIsNonCpuFullyAccelerated), or its fallback runs.
#include <map>

#include "backend.h"
#include "litert.h"

namespace stretch {
namespace backends {

namespace {

// LrtQualcommOptionsHtpPerformanceMode (litert_qualcomm_options.h), in enum order: the "qualcomm" TOML
// payload takes the integer. Checked against the pinned ai-edge-litert 2.3.0 wheel: its Python options list the
// same order (ai_edge_litert/qualcomm_options.py, QualcommHtpPerformanceMode) and pass the mode as an int
// (option_utils.optional_enum_to_int), and its libpywrap_litert_common.so writes "htp_performance_mode = " and
// parses option values with litert::internal::ParseTomlInt/Bool/String only (no enum names).
const std::vector<std::string> kHtpPerformanceModes = {"default",         "sustained_high_performance", "burst",         "high_performance",
                                                       "power_saver",     "low_power_saver",            "high_power_saver", "low_balanced",
                                                       "balanced",        "extreme_power_saver"};

struct NpuOptions {
  std::string vendor, soc_model, performance_mode, dispatch_dir;
  int performance_code = 0;
};

NpuOptions ReadNpuOptions(const Partition& q) {
  NpuOptions o;
  o.vendor = StringOption(q, "vendor", "");
  o.soc_model = StringOption(q, "soc_model", "");
  o.performance_mode = StringOption(q, "htp_performance_mode", "default");
  o.performance_code = EnumOption(q, "htp_performance_mode", o.performance_mode, kHtpPerformanceModes);
  o.dispatch_dir = StringOption(q, "dispatch_library_dir", "");
  return o;
}

class NpuBackend : public Backend {
 public:
  Prepared Prepare(const Job& job) override {
    const Partition& q = *job.partition;
    NpuOptions o = ReadNpuOptions(q);
    if (o.vendor != "qualcomm") return Prepared{nullptr, "", "", "NPU vendor '" + o.vendor + "': this runtime drives the qualcomm dispatch library only"};
    if (o.dispatch_dir.empty()) return Prepared{nullptr, "", "", "the manifest names no dispatch_library_dir"};
    Env& e = envs_[o.dispatch_dir];
    std::vector<LiteRtEnvOption> options;
    if (e.strings.empty()) options = NpuEnvironmentOptions(q, &e.strings);  // first use: LiteRT may keep the pointers
    std::string why;
    LiteRtEnvironment env = e.env.Get(options, &why);
    if (!env) return Prepared{nullptr, "", "", why};
    return PrepareLiteRt(env, job, NpuRequest(q),
                         "LiteRT NPU accelerator (" + o.vendor + " " + o.soc_model + ", dispatch library dir " + o.dispatch_dir +
                             ", htp_performance_mode " + o.performance_mode + ")");
  }

 private:
  struct Env {
    std::vector<std::string> strings;  // the option strings the environment was created with
    Environment env;
  };
  std::map<std::string, Env> envs_;
};

}  // namespace

LiteRtRequest NpuRequest(const Partition& q) {
  NpuOptions o = ReadNpuOptions(q);
  LiteRtRequest r;
  r.accelerators = kLiteRtHwAcceleratorNpu;  // alone: ops the NPU does not take fail the compilation
  r.payloads = {{"qualcomm", "htp_performance_mode = " + std::to_string(o.performance_code) + "\n"}};
  r.whole_partition = true;
  return r;
}

std::vector<LiteRtEnvOption> NpuEnvironmentOptions(const Partition& q, std::vector<std::string>* storage) {
  // The bundle's partitions are plain TFLite files, not compiled for the SoC ahead of time: the vendor's compiler
  // plugin (libLiteRtCompilerPlugin_Qualcomm.so, pushed next to the dispatch library) compiles them on the phone
  // on first use, and the compiled graphs are kept in a cache directory beside it ("on-device AOT",
  // litert/vendors/qualcomm/doc/HTP_INSTRUCTIONS.md). Without the plugin the partition has no NPU node and the
  // request for the NPU alone fails: the fallback runs and the report says why.
  NpuOptions o = ReadNpuOptions(q);
  storage->assign({o.dispatch_dir, o.dispatch_dir + "/compiler-cache"});
  const int tags[] = {kLiteRtEnvOptionTagDispatchLibraryDir, kLiteRtEnvOptionTagCompilerPluginLibraryDir, kLiteRtEnvOptionTagCompilerCacheDir};
  const size_t values[] = {0, 0, 1};
  std::vector<LiteRtEnvOption> options;
  for (size_t i = 0; i < 3; ++i) {
    LiteRtEnvOption option{};
    option.tag = tags[i];
    option.value.type = kLiteRtAnyTypeString;
    option.value.str_value = (*storage)[values[i]].c_str();
    options.push_back(option);
  }
  return options;
}

std::unique_ptr<Backend> MakeNpuBackend() { return std::make_unique<NpuBackend>(); }

}  // namespace backends
}  // namespace stretch
