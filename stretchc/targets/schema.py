"""The schemas of the target files and of the cost model's calibration sets, composed from the backends.

A target file holds the phone's generic facts (name, SoC, memory, the calibration set that prices it, the
measurement protocol) and one section per backend (`Backend.section_schema`, under the backend's name); its
`delegate_limits` are the keys the backends read (`Backend.limit_keys`) and its `protocol` their protocol keys
(`Backend.protocol_key`) plus the statistic. The calibration sets' protocols take the same keys and their points
name a processor. Adding a backend adds its section, limits and protocol key here.

`schemas/target.schema.json` and `schemas/calibration.schema.json` are written from these by
`scripts/gen_target_schemas.py` for tools and people; `tests/targets/test_target_schema.py` checks they are
current. Loading validates against the composed schemas themselves.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from stretchc.backends import backends

NAME_PATTERN = "^[a-z0-9][a-z0-9_-]*$"
STATISTIC = {"enum": ["min", "mean"], "description": "a latency is the minimum or the mean of repeated runs"}
GENERATOR = "scripts/gen_target_schemas.py"


def _protocol_keys() -> dict[str, Any]:
    return {
        b.protocol_key.key: {"enum": list(b.protocol_key.choices), "description": b.protocol_key.description}
        for b in backends()
        if b.protocol_key is not None
    }


def _limits() -> dict[str, Any]:
    keys: dict[str, Any] = {}
    for b in backends():
        for key, lim in b.limit_keys.items():
            keys[key] = {"type": "integer", "minimum": lim.minimum, **({"maximum": lim.maximum} if lim.maximum is not None else {})}
    return {"type": "object", "required": list(keys), "properties": keys, "additionalProperties": False}


@lru_cache(maxsize=1)
def _measured() -> dict[str, Any]:
    """A target measured by `stretchc calibrate`: its own cost-model parameters and the measurements they fit."""
    efficiency = {"type": "number", "exclusiveMinimum": 0}
    return {
        "type": "object",
        "required": ["runs", "warmup", "kinds", "dispatch_ms", "points"],
        "additionalProperties": False,
        "description": "written by stretchc calibrate: the kernel families' parameters fitted to this machine's micro-benchmarks",
        "properties": {
            "runs": {"type": "integer", "minimum": 1},
            "warmup": {"type": "integer", "minimum": 0},
            "kinds": {
                "type": "object",
                # named from the backends, so an error's path quotes no text of the file
                "propertyNames": {"enum": sorted(k for b in backends() for k in b.kernel_priors)},
                "additionalProperties": {
                    "type": "object", "required": ["conv", "dwconv", "mem", "op_ms"], "additionalProperties": False,
                    "properties": {
                        "conv": efficiency, "dwconv": efficiency, "mem": efficiency, "op_ms": {"type": "number", "minimum": 0},
                        "shape_classes": {
                            # the cost model's shape classes (stretchc.costmodel.profile.SHAPE_CLASSES, a layer above this one)
                            "type": "object", "propertyNames": {"pattern": "^[a-z][a-z0-9-]{0,31}$"}, "additionalProperties": efficiency,
                            "description": "per shape class the factor on its ops' time (stretchc.costmodel.profile.SHAPE_CLASSES)",
                        },
                        "weight_gbps": {
                            "type": "number", "exclusiveMinimum": 0,
                            "description": "the bandwidth at which weights beyond the last-level cache are read, every run",
                        },
                    },
                },
            },
            "cache_mb": {"type": "number", "exclusiveMinimum": 0, "description": "the last-level cache (MiB) the weight bandwidth assumes"},
            "dispatch_ms": {"type": "object", "propertyNames": {"enum": [b.name for b in backends()]}, "additionalProperties": {"type": "number", "minimum": 0}},
            "points": {
                "type": "array",
                "items": {
                    "type": "object", "required": ["kernel", "dtype", "ms"], "additionalProperties": False,
                    "properties": {
                        "kernel": {"type": "string"}, "dtype": {"type": "string"}, "ms": {"type": "number", "exclusiveMinimum": 0},
                        "error_pct": {"type": "number"}, "left_out_pct": {"type": "number"},
                    },
                },
            },
        },
    }


def target_schema() -> dict[str, Any]:
    """The JSON schema of a target file."""
    sections = {b.name: b.section_schema for b in backends()}
    protocol = _protocol_keys()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://stretchc.dev/schemas/target.schema.json",
        "title": "stretchc target phone",
        "description": f"Generated by {GENERATOR} from the backends (stretchc/targets/schema.py). Do not edit.",
        "type": "object",
        "required": [
            "name", "description", "soc", *(b.name for b in backends() if b.section_required), "memory", "delegate_limits", "calibration", "protocol",
        ],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "pattern": NAME_PATTERN},
            "description": {"type": "string"},
            "soc": {
                "type": "object",
                "required": ["name", "vendor", "soc_id"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "vendor": {"type": "string"},
                    "soc_id": {"type": ["integer", "null"], "description": "/sys/devices/soc0/soc_id; null for non-Qualcomm SoCs"},
                    "process_nm": {"type": "number"},
                },
            },
            **sections,
            "memory": {
                "type": "object",
                "required": ["peak_gbps"],
                "properties": {"type": {"type": "string"}, "peak_gbps": {"type": "number", "exclusiveMinimum": 0}},
                "additionalProperties": False,
            },
            "delegate_limits": _limits(),
            "calibration": {
                "type": "string",
                "pattern": NAME_PATTERN,
                "description": "the set of calibration.yaml (one per SoC) whose measured latencies price this phone",
            },
            "measured": _measured(),
            "protocol": {
                "type": "object",
                "additionalProperties": False,
                "required": [*protocol, "statistic"],
                "description": "how TFLite models run (or were measured) on this phone; the cost model prices under it",
                "properties": {**protocol, "statistic": STATISTIC, "source": {"type": "string", "minLength": 1}},
            },
        },
    }


@lru_cache(maxsize=1)
def calibration_schema() -> dict[str, Any]:
    """The JSON schema of the cost model's calibration sets (stretchc/targets/data/costmodel/calibration.yaml)."""
    protocol = _protocol_keys()
    point = {
        "type": "object",
        "additionalProperties": False,
        "required": ["dtype", "protocol", "latency_ms", "source"],
        "oneOf": [
            {"required": ["model", "processor"], "not": {"required": ["network"]}},
            {"required": ["network"], "not": {"anyOf": [{"required": ["model"]}, {"required": ["processor"]}, {"required": ["threads"]}]}},
        ],
        "properties": {
            "model": {"type": "string", "description": "a reference network of stretchc.costmodel.refnets, run whole on `processor`"},
            "network": {
                "type": "string",
                "description": "a stored NN-Stretch configuration (stretchc/costmodel/networks/), priced with its own placement",
            },
            "dtype": {"enum": ["float32", "float16", "int8"]},
            "processor": {"enum": [b.name for b in backends()]},
            "threads": {"type": "integer", "minimum": 1},
            "protocol": {"type": "string", "description": "a key of `protocols`"},
            "latency_ms": {"type": "number", "exclusiveMinimum": 0},
            "source": {"type": "string", "minLength": 1},
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://stretchc.dev/schemas/calibration.schema.json",
        "title": "stretchc cost-model calibration sets",
        "description": f"Generated by {GENERATOR} from the backends (stretchc/targets/schema.py). Do not edit.",
        "type": "object",
        "additionalProperties": False,
        "required": ["protocols", "sets"],
        "properties": {
            "protocols": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["description", *protocol, "statistic"],
                    "properties": {"description": {"type": "string", "minLength": 1}, **protocol, "statistic": STATISTIC},
                },
            },
            "sets": {
                "type": "object",
                "propertyNames": {"pattern": NAME_PATTERN},
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["description", "points"],
                    "properties": {"description": {"type": "string", "minLength": 1}, "points": {"type": "array", "items": point}},
                },
            },
        },
    }


GENERATED = {"target.schema.json": target_schema, "calibration.schema.json": calibration_schema}


def render(name: str) -> str:
    """The text of the generated schema file `name` (a key of GENERATED)."""
    return json.dumps(GENERATED[name](), indent=2) + "\n"
