// stretch_benchmark --bundle DIR [--input NAME=FILE.npy]... [--warmup N] [--runs N] [--output-dir DIR]
//                   [--report FILE.json] [--sequential] [--cpu-only] [--spin-us N] [--check]
// Runs a stretchc bundle exactly as its manifest says and prints min/avg/max latency, per partition its time
// and the backend and accelerator that actually ran it (and why, when that is its fallback), per-sync-point
// waits and the bytes the runtime copied per run. Exit status: 0 ok, 2 usage, 3 bad bundle or input, 1 runtime
// failure.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <sys/stat.h>

#include "bundle.h"
#include "npy.h"
#include "runtime.h"

using namespace stretch;

namespace {
int Usage(const std::string& msg) {
  std::cerr << "error: " << msg << "\n"
            << "usage: stretch_benchmark --bundle DIR [--input NAME=FILE.npy]... [--warmup N] [--runs N] [--output-dir DIR]\n"
               "                         [--report FILE.json] [--sequential] [--cpu-only] [--spin-us N] [--check]\n";
  return 2;
}

std::string JsonEscape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') { o += '\\'; o += c; }
    else if (static_cast<unsigned char>(c) < 0x20) { char b[8]; std::snprintf(b, sizeof b, "\\u%04x", c); o += b; }
    else o += c;
  }
  return o;
}

// Messages may quote manifest strings: keep them printable, one line.
std::string Printable(const std::string& s) {
  std::string o;
  for (char c : s) o += (static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7f) ? c : '?';
  return o;
}

// NAME.npy with every byte outside [A-Za-z0-9_.-] (and a leading '.') written %XX: distinct output names never
// share a file and none leaves the folder (the same names as `stretchc run --output-dir`).
std::string OutputFileName(const std::string& name) {
  std::string out;
  for (size_t i = 0; i < name.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(name[i]);
    if ((std::isalnum(c) && c < 0x80) || c == '_' || c == '-' || (c == '.' && i > 0)) {
      out += static_cast<char>(c);
    } else {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", c);
      out += hex;
    }
  }
  return out + ".npy";
}

bool ParseInt(const char* s, int* out) {
  char* end = nullptr;
  long v = std::strtol(s, &end, 10);
  if (!*s || *end || v < 0 || v > 1000000) return false;
  *out = static_cast<int>(v);
  return true;
}
}  // namespace

int main(int argc, char** argv) {
  std::string bundle_dir, output_dir, report;
  std::map<std::string, std::string> inputs;
  int warmup = 1, runs = 10;
  bool check_only = false;
  RuntimeOptions opt;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* name) -> const char* {
      if (i + 1 >= argc) { Usage(std::string(name) + " needs a value"); std::exit(2); }
      return argv[++i];
    };
    if (a == "--bundle") bundle_dir = value("--bundle");
    else if (a == "--output-dir") output_dir = value("--output-dir");
    else if (a == "--report") report = value("--report");
    else if (a == "--input") {
      std::string kv = value("--input");
      auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) return Usage("--input takes NAME=FILE.npy");
      inputs[kv.substr(0, eq)] = kv.substr(eq + 1);
    } else if (a == "--warmup") { if (!ParseInt(value("--warmup"), &warmup)) return Usage("--warmup takes a count"); }
    else if (a == "--runs") { if (!ParseInt(value("--runs"), &runs) || runs < 1) return Usage("--runs takes a positive count"); }
    else if (a == "--spin-us") { if (!ParseInt(value("--spin-us"), &opt.spin_us)) return Usage("--spin-us takes microseconds"); }
    else if (a == "--sequential") opt.sequential = true;
    else if (a == "--cpu-only") opt.allow_accelerators = false;
    else if (a == "--check") check_only = true;
    else if (a == "-h" || a == "--help") { Usage("help"); return 0; }
    else return Usage("unknown option " + a);
  }
  if (bundle_dir.empty()) return Usage("--bundle is required");

  Bundle bundle;
  try {
    bundle = LoadBundle(bundle_dir, !check_only);
  } catch (const BundleError& e) {
    std::cerr << "error[bad-bundle]: " << bundle_dir << ": " << Printable(e.what()) << "\n";
    return 3;
  } catch (const std::exception& e) {
    std::cerr << "error[bad-bundle]: " << bundle_dir << ": " << Printable(e.what()) << "\n";
    return 3;
  }
  if (check_only) {
    std::cout << "bundle OK: " << bundle.partitions.size() << " partitions, " << bundle.lanes.size() << " lanes, "
              << bundle.sync_points.size() << " sync points, arena " << bundle.buffers.arena_size << " bytes\n";
    return 0;
  }
  for (auto& kv : inputs) {
    bool known = false;
    for (auto& io : bundle.inputs) known |= io.name == kv.first;
    if (!known) { std::cerr << "error[bad-input-data]: the model has no input named " << kv.first << "\n"; return 3; }
  }
  std::vector<NpyArray> arrays;
  try {
    std::mt19937 rng(0);
    std::uniform_real_distribution<float> dist(-1.f, 1.f);
    for (auto& io : bundle.inputs) {
      auto it = inputs.find(io.name);
      if (it != inputs.end()) {
        arrays.push_back(ReadNpy(it->second));
      } else {  // no file: seeded random data (float in [-1, 1), integers 0)
        NpyArray a;
        a.dtype = io.dtype;
        a.shape = io.shape;
        size_t n = 1;
        for (auto d : io.shape) n *= static_cast<size_t>(d);
        a.data.assign(n * DtypeSize(io.dtype), 0);
        if (io.dtype == "float32")
          for (size_t k = 0; k < n; ++k) { float v = dist(rng); std::memcpy(a.data.data() + 4 * k, &v, 4); }
        arrays.push_back(std::move(a));
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "error[bad-input-data]: " << e.what() << "\n";
    return 3;
  }

  std::unique_ptr<Runtime> runtime;
  try {
    runtime = std::make_unique<Runtime>(std::move(bundle), opt, std::cerr);
  } catch (const BundleError& e) {  // rule partition-tensors: the models are not the ones the manifest binds
    std::cerr << "error[bad-bundle]: " << bundle_dir << ": " << Printable(e.what()) << "\n";
    return 3;
  } catch (const std::exception& e) {
    std::cerr << "error: " << Printable(e.what()) << "\n";
    return 1;
  }
  try {
    Runtime& rt = *runtime;
    const Bundle& b = rt.bundle();
    std::vector<NpyArray> outputs(b.outputs.size());
    // One inference as an application runs it: inputs in, run, outputs out (only the run is timed).
    auto infer = [&]() {
      for (size_t k = 0; k < arrays.size(); ++k) rt.SetInput(k, arrays[k]);  // inputs may share bytes with later slots
      RunTimes t = rt.Run();
      for (size_t k = 0; k < outputs.size(); ++k) outputs[k] = rt.GetOutput(k);
      return t;
    };
    for (int i = 0; i < warmup; ++i) infer();
    std::vector<double> lat;
    std::vector<double> part(b.partitions.size(), 0), wait(b.sync_points.size(), 0);
    std::vector<uint64_t> part_copied(b.partitions.size(), 0);
    double reuse = 0;
    BytesCopied before = rt.bytes_copied();
    for (int i = 0; i < runs; ++i) {
      RunTimes t = infer();
      lat.push_back(t.total_ms);
      for (size_t k = 0; k < part.size(); ++k) part[k] += t.partition_ms[k] / runs;
      for (size_t k = 0; k < wait.size(); ++k) wait[k] += t.sync_wait_ms[k] / runs;
      for (size_t k = 0; k < part.size(); ++k) part_copied[k] += t.partition_bytes_copied[k];
      reuse += t.reuse_wait_ms / runs;
    }
    BytesCopied after = rt.bytes_copied();
    // Per run (the same every run: what is copied depends on the bundle and the backends, not on the data).
    BytesCopied copied{(after.sync_points - before.sync_points) / runs, (after.model_inputs - before.model_inputs) / runs,
                       (after.model_outputs - before.model_outputs) / runs};
    for (auto& c : part_copied) c /= runs;
    double mn = *std::min_element(lat.begin(), lat.end()), mx = *std::max_element(lat.begin(), lat.end()), avg = 0;
    for (double v : lat) avg += v / lat.size();

    std::cout << "bundle: " << bundle_dir << " (model " << b.model.name << ", " << b.partitions.size() << " partitions, "
              << b.lanes.size() << " lanes" << (opt.sequential ? ", sequential" : "") << ")\n";
    std::printf("latency ms: min %.3f avg %.3f max %.3f (%d runs, %d warmup)\n", mn, avg, mx, runs, warmup);
    for (size_t k = 0; k < part.size(); ++k) {
      const Placement& w = rt.placement()[k];
      std::printf("  partition %-24s %-8s %8.3f ms  on %s/%s: %s [%s]\n", Printable(b.partitions[k].name).c_str(),
                  Printable(LaneName(b.schedule.lanes[b.plans[k].lane])).c_str(), part[k], w.backend.c_str(), w.delegate.c_str(), Printable(w.accelerator).c_str(),
                  Printable(w.options).c_str());
      if (!w.fallback_reason.empty()) std::printf("      fallback because %s\n", Printable(w.fallback_reason).c_str());
      if (part_copied[k]) std::printf("      copies %llu bytes per run\n", static_cast<unsigned long long>(part_copied[k]));
    }
    for (size_t k = 0; k < wait.size(); ++k)
      std::printf("  sync %-12s %-6s wait %8.3f ms\n", b.sync_points[k].name.c_str(), b.sync_points[k].kind.c_str(), wait[k]);
    std::printf("bytes copied per run: %llu at sync points, %llu into model inputs, %llu out of model outputs\n",
                static_cast<unsigned long long>(copied.sync_points), static_cast<unsigned long long>(copied.model_inputs),
                static_cast<unsigned long long>(copied.model_outputs));

    if (!output_dir.empty()) {
      mkdir(output_dir.c_str(), 0755);
      for (size_t k = 0; k < b.outputs.size(); ++k) WriteNpy(output_dir + "/" + OutputFileName(b.outputs[k].name), outputs[k]);
    }
    if (!report.empty()) {
      auto str = [](const std::string& v) { return v.empty() ? std::string("null") : "\"" + JsonEscape(v) + "\""; };
      std::ofstream f(report);
      f << "{\"bundle\": \"" << JsonEscape(bundle_dir) << "\", \"sequential\": " << (opt.sequential ? "true" : "false")
        << ", \"runs\": " << runs << ", \"warmup\": " << warmup << ", \"latency_ms\": {\"min\": " << mn << ", \"avg\": " << avg
        << ", \"max\": " << mx << "}, \"partitions\": {";
      for (size_t k = 0; k < part.size(); ++k) {
        const Partition& q = b.partitions[k];
        const Placement& w = rt.placement()[k];
        f << (k ? ", " : "") << "\"" << JsonEscape(q.name) << "\": {\"ms\": " << part[k] << ", \"processor\": " << str(q.processor)
          << ", \"delegate\": " << str(q.delegate) << ", \"ran_on\": {\"backend\": " << str(w.backend) << ", \"delegate\": " << str(w.delegate)
          << ", \"accelerator\": " << str(w.accelerator) << ", \"options\": " << str(w.options) << "}, \"fallback_reason\": "
          << str(w.fallback_reason) << ", \"requested_options\": " << str(w.requested_options) << ", \"bytes_copied_per_run\": " << part_copied[k]
          << "}";
      }
      f << "}, \"sync_wait_ms\": {";
      for (size_t k = 0; k < wait.size(); ++k) f << (k ? ", " : "") << "\"" << JsonEscape(b.sync_points[k].name) << "\": " << wait[k];
      f << "}, \"reuse_wait_ms\": " << reuse << ", \"bytes_copied_per_run\": {\"sync_points\": " << copied.sync_points
        << ", \"model_inputs\": " << copied.model_inputs << ", \"model_outputs\": " << copied.model_outputs << "}}\n";
      if (!f) throw std::runtime_error("cannot write " + report);
    }
  } catch (const std::exception& e) {
    std::cerr << "error: " << Printable(e.what()) << "\n";
    return 1;
  }
  return 0;
}
