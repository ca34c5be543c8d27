"""Project defaults for `stretchc compile` in `stretchc.toml`.

The file is found in the current directory, or given with `--config FILE`; the command line overrides it
(for `place`, region by region). Relative paths in it (`target` when it is a file, `calib`) are relative to
the file's directory. Unknown keys and wrongly typed values are errors (`bad-config`) naming the key and
the file. Example:

    target = "pixel6"                 # a phone name or a target YAML file
    pipeline = "find-branches,assign-delegates,outline-partitions,insert-sync-points,emit-bundle"
    calib = "calib/"                  # calibration data (a file or a directory)
    precision = "auto"                # float | int8 | fp16-gpu | auto
    io-dtype = "int8"                 # the bundle's model inputs/outputs (default: the ONNX model's dtype)
    place = { "s1.b1" = "<processor>" }  # or "s1.b1=<processor>,stem=<processor>"
    place-from-model = false
    input-shape = { input = [1, 3, 224, 224] }
    cache = true                      # the lowering cache
    time-passes = false
    hexagon-dtype = "int8"            # a backend's own option (stretchc/backends/: Backend.options)

    [preprocessing]                   # the compile settings' preprocess (unless --preprocess says otherwise)
    mean = [0.485, 0.456, 0.406]
    std = [0.229, 0.224, 0.225]

The `[preprocessing]` table is checked as `--preprocess` is (stretchc/quantize/calibration_data.py: keys size,
mean, std; mean and std one value or one per channel, finite, std > 0; size positive integers); it applies to
image calibration data only.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stretchc.backends import backends
from stretchc.errors import StretchError
from stretchc.precision import POLICIES as PRECISION_POLICIES
from stretchc.quantize.calibration_data import parse_preprocess

CONFIG_NAME = "stretchc.toml"

# key -> (python type(s), what it is)
KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "target": ((str,), "phone name or target YAML file"),
    "pipeline": ((str,), "pass pipeline"),
    "calib": ((str,), "calibration data file or directory"),
    "precision": ((str,), "precision policy"),
    "io-dtype": ((str,), "dtype of the bundle's model inputs and outputs"),
    "preprocessing": ((dict,), "input preprocessing table"),
    "place": ((dict, str), "placement: a table region = processor, or REGION=PROC,..."),
    "place-from-model": ((bool,), "use the placement recorded in the model"),
    "input-shape": ((dict,), "table input name = [dims]"),
    "cache": ((bool,), "use the lowering cache"),
    "time-passes": ((bool,), "print the time of every pass"),
    **{o.config_key: ((str,), o.help) for b in backends() for o in b.options},
}


# keys whose value is one of a few words
CHOICES: dict[str, tuple[str, ...]] = {
    "precision": PRECISION_POLICIES,
    "io-dtype": ("int8", "uint8"),
    **{o.config_key: o.choices for b in backends() for o in b.options},
}


@dataclass
class ProjectConfig:
    path: Path | None = None
    values: dict[str, Any] = field(default_factory=dict)


def find_project_config(explicit: str | Path | None, cwd: Path | None = None) -> Path | None:
    """The config file to use: `explicit` (must exist), else `stretchc.toml` in `cwd`, else None."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise StretchError("file-not-found", "configuration file does not exist", file=str(path))
        return path
    candidate = (cwd or Path.cwd()) / CONFIG_NAME
    return candidate if candidate.is_file() else None


def load_project_config(path: Path | None) -> ProjectConfig:
    """Read and check a config file (None: no file, empty config)."""
    if path is None:
        return ProjectConfig()
    file = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise StretchError("bad-config", f"not valid TOML: {exc}", file=file) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StretchError("bad-config", f"cannot read configuration: {getattr(exc, 'strerror', None) or exc}", file=file) from None
    base = path.parent
    values: dict[str, Any] = {}
    for key in raw:
        if key not in KEYS:
            raise StretchError("bad-config", f"unknown key {key!r} (known keys: {', '.join(KEYS)})", file=file)
        types, what = KEYS[key]
        value = raw[key]
        if not isinstance(value, types):
            raise StretchError("bad-config", f"key {key!r} must be a {what}, not {type(value).__name__}", file=file)
        values[key] = value
    for key, allowed in CHOICES.items():
        if key in values and values[key] not in allowed:
            raise StretchError("bad-config", f"key {key!r} must be one of {', '.join(allowed)}, not {values[key]!r}", file=file)
    if "target" in values and (values["target"].endswith((".yaml", ".yml")) or "/" in values["target"]):
        values["target"] = str(_resolve(base, values["target"]))
    if "calib" in values:
        values["calib"] = str(_resolve(base, values["calib"]))
    if "preprocessing" in values:
        parse_preprocess(values["preprocessing"], file=file)  # a mistake is bad-config naming this file
    if isinstance(values.get("place"), dict):
        for region, proc in values["place"].items():
            if not isinstance(proc, str):
                raise StretchError("bad-config", f"key 'place': region {region!r} must map to a processor name", file=file)
    if "input-shape" in values:
        for name, dims in values["input-shape"].items():
            if not isinstance(dims, list) or not dims or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in dims):
                raise StretchError("bad-config", f"key 'input-shape': {name!r} must be a list of positive integers", file=file)
    return ProjectConfig(path=path, values=values)


def _resolve(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


def place_specs(value: Any) -> list[str]:
    """The config's `place` as `--place` strings."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [f"{region}={proc}" for region, proc in value.items()]


def format_config(settings: dict[str, Any]) -> str:
    """Effective settings as TOML-like text (what `--print-config` prints); keys sorted."""
    lines = []
    for key in sorted(settings):
        lines.append(f"{key} = {_toml_value(settings[key])}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if value is None:
        return '""  # not set'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in sorted(value.items())) + " }"
    return json.dumps(str(value))
