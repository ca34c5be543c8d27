"""Load and validate an NN-Stretch (mbm-pycls `mbanynet`) YAML configuration into a typed `Config`.

Contract:
- `load_config(path)` reads YAML, merges it over `DEFAULTS` the way yacs does (string values are decoded with
  `ast.literal_eval`, so `1e-5` is a float; a value must keep its default's type, except that an int may stand
  for a float and a list for a tuple), then checks that the configuration describes a network the builder can
  emit *exactly as the PyTorch mbanynet would build it*. Anything else raises
  `StretchError("bad-config", ...)` naming the key and, where it applies, the 1-based stage; all problems found
  are reported in one message, separated by "; ".
- A missing file raises `StretchError("file-not-found")`; YAML that does not parse raises `bad-config`.
- Inconsistencies the prototype's Keras builder (the one whose TFLite models were timed) tolerates are built
  as it built them, each with a note in `Config.notes` (docs/nnstretch-configs.md): lists longer than the
  shortest one of their kind are cut to it (Python `zip`), and `ORIGINAL_WIDTHS` entries that are not the
  stage's real output width only feed the widths derived from them. `strict=True` refuses them instead.
  What the Keras builder itself would fail on (a residual add of different widths, branches of one stage
  with different strides) is refused either way.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import yaml

from stretchc.backends import backends, fallback
from stretchc.errors import StretchError
from stretchc.modelbuild.defaults import DEFAULTS, DEPRECATED
STEM_TYPES = ("res_stem_in", "simple_stem_in", "res_stem_cifar")
BLOCK_TYPES = ("res_basic_block", "res_bottleneck_block", "mbconv")
ACTIVATIONS = {"relu": "relu", "silu": "silu", "swish": "silu"}


@dataclass(frozen=True)
class Branch:
    """One branch of a stage: `depth` blocks of output width `width`; the first block has stride `stride`."""

    index: int  # 0-based; the branch's position in the stage's concat and in ANYNET.DEVICES
    depth: int
    width: int
    stride: int
    bot_mul: float | None  # bottleneck ratio (res_bottleneck_block) or expansion ratio (mbconv)
    group_w: int | None  # group width of the 3x3 conv (res_bottleneck_block)
    activation: str  # "relu" | "silu", resolved: ANYNET.ACTIVATION_FUN[j] or MODEL.ACTIVATION_FUN
    device: str  # ANYNET.DEVICES[index]
    in_width: int  # the first block's input width as the Keras builder computes it (derived numbers use it)
    in_actual: int  # the channels of the tensor the first block really reads
    convfirst: int | None  # MB_VER 1: width of the 1x1 conv + BN in front of the blocks
    convlast: int | None  # MB_VER 1: width of the 1x1 conv after the blocks (where it differs from `width`)


@dataclass(frozen=True)
class Stage:
    """One stage: its branches (one element = un-branched), its merged width and its MBConv kernel."""

    number: int  # 1-based, as pycls names stages s1, s2, ...
    branches: tuple[Branch, ...]
    original_width: int  # ANYNET.ORIGINAL_WIDTHS: the declared merged width (feeds the next stage's derived widths)
    kernel: int | None  # ANYNET.KERNELS (mbconv only)
    in_width: int  # channels of the tensor entering the stage
    out_width: int  # channels of the stage's output (the join's, or its one branch's)

    @property
    def branched(self) -> bool:
        return len(self.branches) > 1


@dataclass(frozen=True)
class Config:
    """A validated configuration: everything the builder and the complexity counter need, already resolved."""

    name: str  # the file's stem, e.g. "R-50-CD"
    path: str
    num_classes: int
    activation: str  # MODEL.ACTIVATION_FUN, normalised ("relu" | "silu"): stem, head and SE use it
    stem_type: str
    stem_w: int
    stem_k: int
    block_type: str
    stages: tuple[Stage, ...]
    head_w: int
    se_r: float  # ANYNET.SE_R if ANYNET.SE_ON else 0.0
    mb_ver: int
    devices: tuple[str, ...]
    stem_device: str
    merge_device: str
    head_device: str
    bn_eps: float
    values: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)  # "SECTION.KEY" -> value
    notes: tuple[str, ...] = ()  # inconsistencies built the prototype's way (see the module docstring)
    stem_activation: str = ""  # "" = `activation` (see `as_timed`)
    head_activation: str = ""
    timed: bool = False  # the layers of the prototype's Keras (timed) model, see `as_timed`

    @property
    def branched_stages(self) -> tuple[Stage, ...]:
        return tuple(s for s in self.stages if s.branched)


def as_timed(cfg: Config) -> Config:
    """The configuration with the layers of the prototype's Keras model, the one whose latencies were measured
    (mbm-pycls pycls/ir/constructor/tensorflow/anynet.py), instead of the PyTorch model's: no squeeze-excite;
    residual blocks always ReLU; MBConv activations, the stem's and the head's are ReLU when the layer is tagged
    for the CPU (the builder's "Replace silu with relu on CPU"; the stem keeps MODEL.ACTIVATION_FUN when stage 1
    is branched, its last op then being the fork), else MODEL.ACTIVATION_FUN; ANYNET.ACTIVATION_FUN is unused."""
    relu = "relu"
    cpu = fallback().name  # the prototype's CPU

    def branch_act(br: Branch) -> str:
        if cfg.block_type != "mbconv" or br.device == cpu:
            return relu
        return cfg.activation

    stages = tuple(replace(st, branches=tuple(replace(b, activation=branch_act(b)) for b in st.branches)) for st in cfg.stages)
    fork_at_stem = len(cfg.values.get("ANYNET.DEPTHS", [[0]])[0]) > 1
    stem = relu if cfg.stem_type != "simple_stem_in" or (cfg.stem_device == cpu and not fork_at_stem) else cfg.activation
    head = relu if cfg.head_device == cpu else cfg.activation
    return replace(cfg, stages=stages, se_r=0.0, stem_activation=stem, head_activation=head, timed=True)


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round `v` to the nearest multiple of `divisor` (at least `min_value`), never more than 10% below `v`.

    The rounding TensorFlow's MobileNet code uses and mbm-pycls applies to MB_VER 1 "convfirst" widths.
    """
    floor = divisor if min_value is None else min_value
    out = max(floor, int(v + divisor / 2) // divisor * divisor)
    if out < 0.9 * v:
        out += divisor
    return out


# ----------------------------------------------------------------------------------------------------------
# Loading and yacs-style merging


def _decode(value: Any) -> Any:
    """yacs `_decode_cfg_value`: a string that is a Python literal becomes that literal."""
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def _coerce(key: str, default: Any, value: Any, problems: list[str]) -> Any:
    if type(value) is type(default):
        return value
    if isinstance(default, (list, tuple)) and isinstance(value, (list, tuple)):
        return list(value)
    if type(default) is float and type(value) is int:
        return float(value)
    problems.append(f"{key}: expected {type(default).__name__} like the default {default!r}, got {value!r}")
    return default


def _merge(raw: Mapping[str, Any], problems: list[str]) -> dict[str, Any]:
    """Flatten `raw` over DEFAULTS into {"SECTION.KEY": value}; unknown keys are problems."""
    flat: dict[str, Any] = {}
    for section, default in DEFAULTS.items():
        if isinstance(default, dict):
            for key, val in default.items():
                flat[f"{section}.{key}"] = val
        else:
            flat[section] = default
    for section, value in raw.items():
        sect = str(section)
        if sect in DEPRECATED:
            continue
        if sect not in DEFAULTS:
            problems.append(f"unknown key {sect}")
            continue
        if isinstance(DEFAULTS[sect], dict):
            if value is None:
                continue
            if not isinstance(value, Mapping):
                problems.append(f"{sect}: expected a mapping of keys, got {value!r}")
                continue
            for key, val in value.items():
                full = f"{sect}.{key}"
                if full in DEPRECATED:
                    continue
                if full not in flat:
                    problems.append(f"unknown key {full}")
                    continue
                flat[full] = _coerce(full, flat[full], _decode(val), problems)
        else:
            flat[sect] = _coerce(sect, DEFAULTS[sect], _decode(value), problems)
    return flat


def load_config(path: str | Path, *, strict: bool = False) -> Config:
    """Read, merge and validate the configuration at `path`. See the module docstring for the contract."""
    p = Path(path)
    if not p.is_file():
        raise StretchError("file-not-found", f"configuration {p} does not exist", file=str(p))
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise StretchError("bad-config", f"cannot read the configuration: {exc}", file=str(p)) from exc
    except yaml.YAMLError as exc:
        msg = " ".join(str(exc).split())
        raise StretchError("bad-config", f"not valid YAML: {msg}", file=str(p)) from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise StretchError("bad-config", "the configuration must be a YAML mapping of sections", file=str(p))
    return config_from_dict(raw, name=p.stem, path=str(p), strict=strict)


def config_from_dict(raw: Mapping[str, Any], *, name: str = "config", path: str = "", strict: bool = False) -> Config:
    """Merge and validate an already-parsed configuration (`load_config` without the file)."""
    problems: list[str] = []
    flat = _merge(raw, problems)
    cfg = None
    if not problems:
        cfg = _validate(flat, name, path, problems, strict=strict)
    if problems or cfg is None:
        raise StretchError("bad-config", "; ".join(problems), file=path or None)
    return cfg


# ----------------------------------------------------------------------------------------------------------
# Validation


def _is_int(v: Any) -> bool:
    return type(v) is int


def _is_num(v: Any) -> bool:
    return type(v) in (int, float) and math.isfinite(v)


def _per_branch(key: str, value: Any, problems: list[str]) -> list[list[Any]] | None:
    """Check `value` is a list (one per stage) of non-empty lists of positive integers; None after a problem."""
    if not isinstance(value, list) or not value:
        problems.append(f"{key}: expected one list of per-branch values per stage, got {value!r}")
        return None
    out: list[list[Any]] = []
    for i, stage in enumerate(value, 1):
        if not isinstance(stage, list) or not stage:
            problems.append(f"{key} stage {i}: expected a non-empty list (one value per branch), got {stage!r}")
            out.append([])
            continue
        for v in stage:
            if not (_is_int(v) and v > 0):
                problems.append(f"{key} stage {i}: {v!r} is not a positive integer")
        out.append(stage)
    return out


def _note_extra(lists: Mapping[str, list[Any]], n: int, what: str, where: str, notes: list[str]) -> None:
    """A note for every list of `lists` longer than `n`, the length of the shortest (Python `zip` keeps `n`).
    DEVICES is exempt: a stage may use fewer branches than there are processors."""
    shortest = ", ".join(k for k, v in lists.items() if len(v) == n)
    for key, v in lists.items():
        if len(v) > n and key != "ANYNET.DEVICES":
            notes.append(
                f"{key}{where}: has {len(v)} entries but the {what} are {n} (the length of the shortest list: "
                f"{shortest}); the extra {v[n:]!r} ignored, as the prototype's Keras builder (zip) does"
            )


def _act(key: str, value: Any, problems: list[str]) -> str:
    if not isinstance(value, str) or value.lower() not in ACTIVATIONS:
        problems.append(f"{key}: unsupported activation {value!r} (supported: relu, silu, swish)")
        return "relu"
    return ACTIVATIONS[value.lower()]


def _device(key: str, value: Any, problems: list[str]) -> str:
    """The processor a DEVICES word of the prototype names (each backend's `prototype_device`)."""
    words = {b.prototype_device: b.name for b in backends() if b.prototype_device is not None}
    if not isinstance(value, str) or value.lower() not in words:
        problems.append(f"{key}: unknown processor {value!r} (expected one of {', '.join(words)})")
        return fallback().name
    return words[value.lower()]


def _validate(f: dict[str, Any], name: str, path: str, problems: list[str], *, strict: bool) -> Config | None:
    notes: list[str] = []
    if f["MODEL.TYPE"] != "mbanynet":
        problems.append(f"MODEL.TYPE: {f['MODEL.TYPE']!r} is not supported (build-model builds 'mbanynet')")
    num_classes = f["MODEL.NUM_CLASSES"]
    if not num_classes > 0:
        problems.append(f"MODEL.NUM_CLASSES: must be positive, got {num_classes}")
    activation = _act("MODEL.ACTIVATION_FUN", f["MODEL.ACTIVATION_FUN"], problems)
    stem_type = f["ANYNET.STEM_TYPE"]
    if stem_type not in STEM_TYPES:
        problems.append(f"ANYNET.STEM_TYPE: {stem_type!r} is not supported (supported: {', '.join(STEM_TYPES)})")
    block_type = f["ANYNET.BLOCK_TYPE"]
    if block_type not in BLOCK_TYPES:
        problems.append(
            f"ANYNET.BLOCK_TYPE: {block_type!r} is not supported (supported: {', '.join(BLOCK_TYPES)})"
        )
    stem_w, stem_k, head_w = f["ANYNET.STEM_W"], f["ANYNET.STEM_K"], f["ANYNET.HEAD_W"]
    if stem_w <= 0:
        problems.append(f"ANYNET.STEM_W: must be positive, got {stem_w}")
    if stem_k <= 0 or stem_k % 2 == 0:
        problems.append(f"ANYNET.STEM_K: must be a positive odd kernel size, got {stem_k}")
    if head_w < 0:
        problems.append(f"ANYNET.HEAD_W: must be 0 (no head conv) or positive, got {head_w}")
    se_on, se_r = f["ANYNET.SE_ON"], f["ANYNET.SE_R"]
    if se_on and not se_r > 0:
        problems.append(f"ANYNET.SE_R: must be positive when ANYNET.SE_ON is true, got {se_r}")
    mb_ver = f["ANYNET.MB_VER"]
    if mb_ver not in (1, 2):
        problems.append(f"ANYNET.MB_VER: must be 1 or 2, got {mb_ver}")
    if f["ANYNET.MB_DOWNSAMPLE"] is not True:
        problems.append(
            "ANYNET.MB_DOWNSAMPLE: false is not supported (the PyTorch mbanynet always feeds every branch the "
            "merged tensor)"
        )
    bn_eps = f["BN.EPS"]
    if not bn_eps > 0:
        problems.append(f"BN.EPS: must be positive, got {bn_eps}")

    # Devices.
    devices_raw = f["ANYNET.DEVICES"]
    devices: list[str] = []
    if not devices_raw:
        problems.append("ANYNET.DEVICES: must list at least one processor")
    for d in devices_raw:
        dev = _device("ANYNET.DEVICES", d, problems)
        if dev in devices:
            problems.append(f"ANYNET.DEVICES: {dev!r} is listed twice (one branch per processor)")
        devices.append(dev)
    stem_device = _device("ANYNET.STEM_DEVICE", f["ANYNET.STEM_DEVICE"], problems)
    merge_device = _device("ANYNET.MERGE_DEVICE", f["ANYNET.MERGE_DEVICE"], problems)
    head_device = _device("ANYNET.HEAD_DEVICE", f["ANYNET.HEAD_DEVICE"], problems)
    branch_acts_raw = f["ANYNET.ACTIVATION_FUN"]
    branch_acts: list[str | None] = [None] * len(devices)
    if branch_acts_raw:
        if len(branch_acts_raw) != len(devices):
            problems.append(
                f"ANYNET.ACTIVATION_FUN: has {len(branch_acts_raw)} entries but ANYNET.DEVICES has "
                f"{len(devices)} (one activation per branch processor)"
            )
        branch_acts = [_act("ANYNET.ACTIVATION_FUN", a, problems) for a in branch_acts_raw]
        branch_acts += [None] * max(0, len(devices) - len(branch_acts))

    # Stage shape. The prototype's Keras builder zips the per-stage lists (DEPTHS, WIDTHS, STRIDES, BOT_MULS,
    # GROUP_WS, ORIGINAL_WIDTHS, KERNELS) and, inside a stage, the per-branch lists with DEVICES: the shortest
    # list decides, extra entries are ignored (a note each).
    depths = _per_branch("ANYNET.DEPTHS", f["ANYNET.DEPTHS"], problems)
    widths = _per_branch("ANYNET.WIDTHS", f["ANYNET.WIDTHS"], problems)
    strides = _per_branch("ANYNET.STRIDES", f["ANYNET.STRIDES"], problems)
    group_ws = None
    if f["ANYNET.GROUP_WS"]:
        group_ws = _per_branch("ANYNET.GROUP_WS", f["ANYNET.GROUP_WS"], problems)
    elif block_type == "res_bottleneck_block":
        problems.append("ANYNET.GROUP_WS: required for res_bottleneck_block (a group width per branch)")
    bot_muls = f["ANYNET.BOT_MULS"]
    if not bot_muls and block_type in ("res_bottleneck_block", "mbconv"):
        problems.append(f"ANYNET.BOT_MULS: required for {block_type} (one ratio per stage or per branch)")
    kernels = f["ANYNET.KERNELS"]
    if block_type == "mbconv":
        if not kernels:
            problems.append("ANYNET.KERNELS: mbconv needs one kernel size per stage")
        for i, k in enumerate(kernels, 1):
            if not (_is_int(k) and k > 0 and k % 2 == 1):
                problems.append(f"ANYNET.KERNELS stage {i}: {k!r} is not a positive odd kernel size")
    originals = f["ANYNET.ORIGINAL_WIDTHS"]
    for i, o in enumerate(originals, 1):
        if not (_is_int(o) and o > 0):
            problems.append(f"ANYNET.ORIGINAL_WIDTHS stage {i}: {o!r} is not a positive integer")
    if not originals:
        problems.append("ANYNET.ORIGINAL_WIDTHS: required (the merged width of every stage)")
    if problems or depths is None or widths is None or strides is None:
        return None
    per_stage = {"ANYNET.DEPTHS": depths, "ANYNET.WIDTHS": widths, "ANYNET.STRIDES": strides, "ANYNET.ORIGINAL_WIDTHS": originals}
    if group_ws is not None:
        per_stage["ANYNET.GROUP_WS"] = group_ws
    if bot_muls:
        per_stage["ANYNET.BOT_MULS"] = bot_muls
    if block_type == "mbconv":
        per_stage["ANYNET.KERNELS"] = kernels
    n = min(len(v) for v in per_stage.values())
    _note_extra(per_stage, n, "stages", "", notes)

    stages: list[Stage] = []
    prev_w = stem_w  # the Keras builder's `prev_w`: the previous stage's ORIGINAL_WIDTHS entry (or STEM_W)
    actual = stem_w  # the channels of the tensor entering the stage
    for i in range(n):
        s = i + 1
        ds = depths[i]
        bs_raw = bot_muls[i] if bot_muls else None
        per_branch: dict[str, list[Any]] = {"ANYNET.DEVICES": devices, "ANYNET.DEPTHS": ds, "ANYNET.WIDTHS": widths[i], "ANYNET.STRIDES": strides[i]}
        if isinstance(bs_raw, list):
            per_branch["ANYNET.BOT_MULS"] = bs_raw
        if group_ws is not None:
            per_branch["ANYNET.GROUP_WS"] = group_ws[i]
        nb = min(len(v) for v in per_branch.values())
        _note_extra(per_branch, nb, "branches", f" stage {s}", notes)
        ws, ss = widths[i][:nb], strides[i][:nb]
        bs = list(bs_raw[:nb]) if isinstance(bs_raw, list) else [bs_raw] * nb
        gs = list(group_ws[i][:nb]) if group_ws is not None else [None] * nb
        if bot_muls:
            for v in bs:
                if not (_is_num(v) and v > 0):
                    problems.append(f"ANYNET.BOT_MULS stage {s}: {v!r} is not a positive number")
        if len(set(ss)) > 1:
            problems.append(f"ANYNET.STRIDES stage {s}: branches of one stage must share the stride, got {ss!r}")
        o = originals[i]
        # MB_VER 1 wraps every branch in convfirst/convlast when the stage lists several depths (the Keras
        # builder tests len(DEPTHS[i]), not the zipped branch count); the join projects to o // N only then.
        wrapped = mb_ver == 1 and len(ds) > 1
        out_w = sum(ws) if not wrapped or nb == 1 else nb * (o // nb)
        if out_w != o:
            how = (
                f"the branch widths add up to {out_w} ({'+'.join(map(str, ws))})" if nb > 1 and not wrapped
                else f"each of the {nb} branches is projected to {o}//{nb} = {o // nb}" if nb > 1
                else f"its one branch is {out_w} wide (ANYNET.WIDTHS) and joins by an identity"
            )
            feeds = f"only feeds the widths derived from it in stage {s + 1}" if s < n else "is not used (last stage)"
            notes.append(
                f"ANYNET.ORIGINAL_WIDTHS stage {s}: says {o}, but {how}, so the stage's output is {out_w} channels "
                f"wide; {o} {feeds}, as in the prototype's Keras builder"
            )
        if problems:
            prev_w, actual = o, out_w
            continue
        branches: list[Branch] = []
        for j in range(nb):
            act = branch_acts[j] if j < len(branch_acts) and branch_acts[j] else activation
            convfirst = make_divisible(ws[j] / o * prev_w, 8) if wrapped else None
            convlast = o // nb if wrapped and nb > 1 and ws[j] != o // nb else None
            w_in, a_in = (convfirst, convfirst) if convfirst else (prev_w, actual)
            br = Branch(j, ds[j], ws[j], ss[j], bs[j], gs[j], act, devices[j], w_in, a_in, convfirst, convlast)
            _check_block(br, s, block_type, problems)
            branches.append(br)
        stages.append(Stage(s, tuple(branches), o, kernels[i] if block_type == "mbconv" else None, actual, out_w))
        prev_w, actual = o, out_w
    if strict and notes:
        problems += [f"{n} (refused by --strict)" for n in notes]
    if problems:
        return None
    return Config(
        name=name,
        path=path,
        num_classes=num_classes,
        activation=activation,
        stem_type=stem_type,
        stem_w=stem_w,
        stem_k=stem_k,
        block_type=block_type,
        stages=tuple(stages),
        head_w=head_w,
        se_r=float(se_r) if se_on else 0.0,
        mb_ver=mb_ver,
        devices=tuple(devices),
        stem_device=stem_device,
        merge_device=merge_device,
        head_device=head_device,
        bn_eps=float(bn_eps),
        values=dict(f),
        notes=tuple(notes),
    )


def _check_block(br: Branch, s: int, block_type: str, problems: list[str]) -> None:
    """Check the arithmetic of a branch's blocks (grouped widths, expansion) and that its first block's residual
    add, decided from the derived width `in_width` as the Keras builder decides it, gets equal widths."""
    where = f"stage {s} branch {br.index}"
    if block_type in ("res_basic_block", "res_bottleneck_block"):
        if br.in_width == br.width and br.stride == 1 and br.in_actual != br.width:
            problems.append(
                f"ANYNET.WIDTHS {where}: the first block has no projection (derived input width {br.in_width} = "
                f"{br.width}) but reads {br.in_actual} channels; its residual add cannot be built"
            )
    if block_type == "res_bottleneck_block":
        g = br.group_w
        if not (_is_int(g) and g > 0):
            problems.append(f"ANYNET.GROUP_WS {where}: {g!r} is not a positive integer")
            return
        w_b = int(round(br.width * float(br.bot_mul or 0)))
        groups = w_b // g
        if w_b <= 0 or groups < 1 or w_b % groups != 0:
            problems.append(
                f"ANYNET.GROUP_WS {where}: bottleneck width {w_b} (WIDTHS {br.width} x BOT_MULS {br.bot_mul}) "
                f"cannot be split into groups of {g}"
            )
    elif block_type == "mbconv":
        for c_in in {br.in_width, br.width}:
            if int(c_in * float(br.bot_mul or 0)) <= 0:
                problems.append(f"ANYNET.BOT_MULS {where}: expansion {br.bot_mul} gives an empty MBConv")
        if br.stride == 1 and br.in_width == br.width and br.in_actual != br.width:
            problems.append(
                f"ANYNET.WIDTHS {where}: the first MBConv adds its input (derived width {br.in_width} = {br.width}) "
                f"but reads {br.in_actual} channels; its residual add cannot be built"
            )
