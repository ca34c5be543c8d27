"""What a processor kind is to the compiler: the `Backend` base class and the small types backends share.

A backend is one processor kind (its `name` is the processor the IR, the manifest and `--place` spell). It says:
- where it exists: `unavailable(target)` (None, or why the target cannot use it), from its section of the target
  file (`section_schema`, validated with the rest of the file);
- what it runs: `precisions(target)` (`stretchc.precision`), whether its partitions convert float <-> 8-bit
  themselves (`float_conversions`), whether grouped convolutions must be split for it (`ungroup_convs`);
- its op rules: `op_violation(node)` names the rule an op breaks (None: eligible); `strict_rules`: a region
  placed on it by `--place` must keep them too (else only the automatic placement avoids it);
- its partition limits: `limit_keys` (the target's `delegate_limits` it reads) and `limit_violations`;
- the quantization it needs: `quantization(options)` (None: TFLite's defaults, per-channel weights), with its
  compile options (`options`, e.g. the Hexagon dtype);
- what the manifest says of its partitions: `delegate`, `delegate_options(precision, target)`;
- its cost-model parameters: the kernel families it runs (`execution`), their priors (`kernel_priors`), its
  dispatch prior (`dispatch_ms`, fitted when `fit_dispatch`), its nominal peak (`peak_gops`), and the key of the
  measurement protocol it reads (`protocol_key`);
- how the host reference runtime runs it (`host_file`, and `host_notes`: what it says where that differs from the phone);
- its name for the NN-Stretch prototype: `nnstretch_tag` (tensor-name tag, `--emit nnstretch-tflite`) and
  `prototype_device` (the YAML configurations' DEVICES word); None when the prototype has no such processor.

Generic code asks `stretchc.backends` (the registry) and never spells a processor's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

if TYPE_CHECKING:
    from stretchc.ir import Node


# Where android_runtime/push_and_run.sh puts the runtime, its libraries (Hexagon skel, NPU dispatch and QNN
# libraries) and bundles on the phone ($DEVICE_DIR there): the library directories the manifest names.
DEVICE_DIR = "/data/local/tmp/stretch"


@dataclass(frozen=True)
class Violation:
    """An op rule a node breaks: a short rule id (`dilation`, `op`, ...) and one sentence."""

    rule: str
    detail: str


@dataclass(frozen=True)
class LimitViolation:
    """A partition limit a placement breaks: the limit's id, the processor, the regions of the offending
    partitions, one sentence."""

    limit: str
    processor: str
    regions: tuple[str, ...]
    message: str


@dataclass(frozen=True)
class LimitKey:
    """A key of the target's `delegate_limits` a backend reads: its default and bounds."""

    default: int
    minimum: int = 1
    maximum: int | None = None
    description: str = ""


@dataclass(frozen=True)
class ProtocolKey:
    """The key of a measurement protocol (target `protocol`, calibration `protocols`) a backend reads."""

    key: str
    choices: tuple[str, ...]
    default: str
    description: str


@dataclass(frozen=True)
class Option:
    """A compile option a backend takes: `stretchc compile FLAG VALUE`, `KEY = "VALUE"` in stretchc.toml."""

    key: str  # the backend's own name for it (CompileSettings.backend_options[backend][key])
    flag: str  # the command-line flag, e.g. --hexagon-dtype
    config_key: str  # the stretchc.toml key
    choices: tuple[str, ...]
    default: str
    help: str


@dataclass(frozen=True)
class Execution:
    """The kernel family that runs a region, the precision it computes at and the bytes per element it moves."""

    kind: str
    precision: str
    width: int


@dataclass(frozen=True)
class PartitionOps:
    """One partition a placement gives: its regions and its ops (the `tfl.` nodes, in graph order)."""

    regions: tuple[str, ...]
    ops: tuple[Any, ...]


class QuantizationRules:
    """How a backend's int8 partitions must be quantized beyond TFLite's defaults (see `Backend.quantization`).

    `dtype`: int8 or uint8 (the partition's precision after quantization); `weights(per_tensor)`: the weight
    variant of `stretchc.quantize.calibrate.WEIGHTS` to take; `max_spread` and `wide_spreads(nodes)`: per-channel
    weights whose channel-scale spread the backend cannot take (then per tensor); `finish(nodes, partition)`:
    last rewrites of the quantized ops (e.g. to the uint8 form).
    """

    dtype: str = "int8"
    max_spread: float = float("inf")

    def weights(self, *, per_tensor: bool = False) -> str:
        return "per-tensor" if per_tensor else "per-channel"

    def wide_spreads(self, nodes: list[Node]) -> list[tuple[str, float]]:
        return []

    def finish(self, nodes: list[Node], *, partition: str) -> None:
        return None


class Backend:
    """One processor kind (see the module docstring). Subclasses set the class attributes and override what
    differs; `stretchc.backends.register_backend` makes an instance known."""

    name: ClassVar[str]
    label: ClassVar[str]  # how messages name it: "the {label}"
    delegate: ClassVar[str]
    order: ClassVar[int]  # lanes, tables and preference order
    fallback: ClassVar[bool] = False  # the processor every other one falls back to (exactly one backend)
    PRECISIONS: ClassVar[tuple[str, ...]]  # most preferred first for a fixed policy
    manifest_precisions: ClassVar[tuple[str, ...]] = ()  # what rule `precision` accepts (empty: any), as the C++ registry
    float_conversions: ClassVar[bool] = True
    ungroup_convs: ClassVar[bool] = False
    strict_rules: ClassVar[bool] = False
    nnstretch_tag: ClassVar[str | None] = None
    prototype_device: ClassVar[str | None] = None
    colour: ClassVar[str] = "#7f7f7f"
    section_schema: ClassVar[dict[str, Any]]
    section_required: ClassVar[bool] = True
    limit_keys: ClassVar[Mapping[str, LimitKey]] = {}
    protocol_key: ClassVar[ProtocolKey | None] = None
    options: ClassVar[tuple[Option, ...]] = ()
    kernel_priors: ClassVar[Mapping[str, Mapping[str, float]]]
    dispatch_ms: ClassVar[float]
    fit_dispatch: ClassVar[bool] = True
    # The largest `mem` efficiency of its kernel families: their data movement as a fraction of the phone's DRAM
    # bandwidth, which only a processor whose tensors mostly stay in on-chip memory can exceed.
    mem_reach: ClassVar[float] = 1.0

    # ------------------------------------------------------------------ where it runs

    def unavailable(self, target: Any) -> str | None:
        """None when bundles for `target` can use this processor, else why not (one sentence)."""
        return None

    def describe(self, target: Any) -> str:
        """What this processor is on `target`, for `stretchc targets show`."""
        return self.label

    def host_section(self, cpuinfo: Mapping[str, str]) -> Any:
        """Its section of the target file of the machine stretchc runs on (`stretchc calibrate -t host`), from the
        first processor's fields of /proc/cpuinfo: by default None, the machine has none (a backend whose section
        cannot be null says so in its own form)."""
        return None

    # ------------------------------------------------------------------ what it runs

    def precisions(self, target: Any = None) -> tuple[str, ...]:
        """The precisions its partitions run at on `target` (all of them when None), preferred first."""
        return self.PRECISIONS

    def runs_float32(self, target: Any = None) -> bool:
        return "float32" in self.precisions(target)

    def quantized_only(self, target: Any = None) -> bool:
        """Whether it runs 8-bit partitions only (so needs calibration data and a quantizing pipeline)."""
        return all(q in ("int8", "uint8") for q in self.precisions(target))

    def op_violation(self, node: Node, *, quantized: bool = False) -> Violation | None:
        """The first rule `node` breaks on this processor, or None. `quantized`: the node is already int8."""
        return None

    def limit_violations(self, partitions: list[PartitionOps], limits: Mapping[str, int]) -> list[LimitViolation]:
        """The limits its partitions (those a placement puts on it) break."""
        return []

    def quantization(self, options: Mapping[str, str]) -> QuantizationRules | None:
        """Its quantization rules under its compile `options` (None: TFLite's defaults)."""
        return None

    # ------------------------------------------------------------------ the manifest

    def delegate_options(self, precision: str, target: Any) -> dict[str, Any]:
        return {}

    def threads(self, target: Any) -> tuple[int, tuple[int, ...]]:
        """CPU threads and core affinity of a partition's interpreter on `target` (the fallback backend's)."""
        raise NotImplementedError(f"{self.name} does not own the CPU threads")

    def lanes(self, target: Any) -> int:
        """How many of its partitions may run at the same time on `target`, each in a lane (a worker thread of the
        runtime) of its own: one, unless the backend says otherwise."""
        return 1

    # ------------------------------------------------------------------ the cost model

    def execution(self, dtype: str, protocol: Any) -> Execution:
        """How a region whose tensors are `dtype` runs on it under the measurement `protocol`."""
        raise NotImplementedError

    def peak_gops(self, hw: Mapping[str, Any], precision: str, *, threads: int | None = None) -> float:
        """Nominal peak in GFLOPS (GOPS for int8) at `precision`, from a SoC's hardware description `hw` (the
        backends' target sections)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ the host reference runtime

    # Why an fp16 partition is float32 on the host (the default host notes say it).
    fp16_on_phone: ClassVar[str] = ""

    def host_notes(self, partition: Mapping[str, Any]) -> tuple[str, ...]:
        """What the host runtime says when it runs this partition other than the phone would: that a processor
        other than the fallback runs on this machine's CPU, and an fp16 partition in float32."""
        if self.fallback:
            return ()
        notes = (f"{self.label} partitions run on this machine's CPU (host reference runtime)",)
        if partition["precision"] == "float16":
            notes += (f"fp16 {self.label} partitions run in float32 here ({self.fp16_on_phone})",)
        return notes

    def host_file(self, partition: Mapping[str, Any]) -> str:
        """The bundle file the host runtime runs for this partition."""
        return str(partition["file"])

