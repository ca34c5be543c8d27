"""The Python API: compile a model into a bundle, run it and verify it, from Python (docs/api.md).

    import stretchc
    bundle = stretchc.compile("model.onnx", "build/model.stretch", target="pixel6")
    outputs = bundle.run({"input": x})
    report = bundle.verify("model.onnx")

What every `stretchc` command does, as functions and typed values; the command line is a layer over this package
(stretchc/commands/), so both make the same checks, in one place (here or below), and raise
the same errors (`stretchc.errors.StretchError`, whose `code` and `exit_status` are the command line's; messages
name an option as the command line spells it, `--calib` for `calib=`, as the layers below do). The command line
adds its configuration file (stretchc.toml), argument parsing and its output (tables, `--diagnostics=json`, exit
statuses); the API reads no configuration file and prints nothing unless asked (`quiet=False`).

One module per job: `targets` (the phones), `report` (a placement report as typed values), `bundle` (a bundle on
disk), `compiling` (options and `compile`), `models` (NN-Stretch configurations built, the examples), `cost`
(calibrating this machine, the cost model's accuracy), `debugging` (the passes, `opt`, `bisect_passes`); what they
share is in `_common`.
"""

from __future__ import annotations

from stretchc.api.bundle import REPORT_FILE, ArrayOrFile, Bundle, CompiledBundle, check_verify_data, read_array
from stretchc.api.compiling import Debug, Options, compile, driver_options
from stretchc.api.cost import TargetAccuracy, calibrate, cost_model_accuracy
from stretchc.api.debugging import Bisection, PassInfo, Replayed, bisect_passes, default_pipeline, list_passes, opt
from stretchc.api.models import EXAMPLES, BuiltModel, WrittenExample, build_model, is_stretchc_model, write_example
from stretchc.api.report import Alternative, PartitionInfo, RegionInfo, Report, TimelineEntry
from stretchc.api.targets import BackendInfo, TargetInfo, get_target, list_targets
from stretchc.runtime.host import Profile
from stretchc.verify import VerifyReport

__all__ = [
    "EXAMPLES", "REPORT_FILE", "Alternative", "ArrayOrFile", "BackendInfo", "Bisection", "BuiltModel", "Bundle", "CompiledBundle", "Debug",
    "Options", "PartitionInfo", "PassInfo", "Profile", "RegionInfo", "Replayed", "Report", "TargetAccuracy", "TargetInfo", "TimelineEntry",
    "VerifyReport", "WrittenExample", "bisect_passes", "build_model", "calibrate", "check_verify_data", "compile", "cost_model_accuracy",
    "default_pipeline", "driver_options", "get_target", "is_stretchc_model", "list_passes", "list_targets", "opt", "read_array",
    "write_example",
]
