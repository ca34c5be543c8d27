"""Reduced-size NN-Stretch-style models for the Hexagon tests and benchmark (model builder, narrow widths)."""

from __future__ import annotations

from pathlib import Path

import onnx
import yaml

from stretchc.modelbuild import build_model, load_config

RESNET_CD = {
    "MODEL": {"TYPE": "mbanynet", "NUM_CLASSES": 10},
    "ANYNET": {
        "STEM_TYPE": "res_stem_in", "STEM_W": 16, "BLOCK_TYPE": "res_bottleneck_block",
        "STRIDES": [[1, 1], [2, 2]], "DEPTHS": [[1, 1], [1, 1]], "WIDTHS": [[32, 32], [64, 64]],
        "BOT_MULS": [0.25, 0.25], "GROUP_WS": [[8, 8], [16, 16]], "DEVICES": ["cpu", "dsp"],
        "HEAD_DEVICE": "cpu", "STEM_DEVICE": "cpu", "MERGE_DEVICE": "cpu", "ORIGINAL_WIDTHS": [64, 128],
    },
}
EFFNET_LITE_CD = {
    "MODEL": {"TYPE": "mbanynet", "NUM_CLASSES": 10, "ACTIVATION_FUN": "relu"},
    "ANYNET": {
        "STEM_TYPE": "simple_stem_in", "STEM_W": 16, "STEM_K": 3, "BLOCK_TYPE": "mbconv",
        "STRIDES": [[1], [2, 2], [2, 2]], "DEPTHS": [[1], [1, 1], [1, 1]], "WIDTHS": [[16], [24, 16], [32, 24]],
        "BOT_MULS": [1, 6, 6], "KERNELS": [3, 3, 5], "HEAD_W": 64, "DEVICES": ["cpu", "dsp"],
        "HEAD_DEVICE": "cpu", "STEM_DEVICE": "cpu", "MERGE_DEVICE": "cpu", "ORIGINAL_WIDTHS": [16, 24, 40],
        "SE_ON": False, "MB_VER": 1,
    },
}
NETS = {"resnet": RESNET_CD, "effnet-lite": EFFNET_LITE_CD}


def build(name: str, folder: Path, image_size: int = 64, seed: int = 0) -> Path:
    cfg = folder / f"{name}.yaml"
    cfg.write_text(yaml.safe_dump(NETS[name], sort_keys=False))
    model = build_model(load_config(cfg), image_size=image_size, seed=seed)
    path = folder / f"{name}.onnx"
    onnx.save(model, str(path))
    return path
