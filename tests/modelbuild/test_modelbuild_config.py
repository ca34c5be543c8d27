"""Configuration loading and validation: every refusal and every note names the key and the stage."""

from __future__ import annotations

import pytest
from mbhelpers import PROTOTYPE, variant

from stretchc.errors import StretchError
from stretchc.modelbuild import load_config, make_divisible


def refused(path, *, strict: bool = False) -> str:
    with pytest.raises(StretchError) as info:
        load_config(path, strict=strict)
    assert info.value.code == "bad-config"
    assert info.value.location.file == str(path)
    return info.value.message


def test_base_config_loads(write_cfg):
    cfg = load_config(write_cfg(variant()))
    assert cfg.name == "cfg"
    assert [len(s.branches) for s in cfg.stages] == [2, 2]
    assert cfg.stages[1].branches[1].device == "dsp"
    assert cfg.stem_k == 7 and cfg.mb_ver == 2 and cfg.bn_eps == 1e-5


def test_missing_file(tmp_path):
    with pytest.raises(StretchError) as info:
        load_config(tmp_path / "nope.yaml")
    assert info.value.code == "file-not-found"


def test_invalid_yaml(write_cfg):
    assert "not valid YAML" in refused(write_cfg("MODEL: [unclosed\n"))


@pytest.mark.parametrize(
    "text, key",
    [
        ("MODEL:\n  TYPE: mbanynet\n  COLOR: red\n", "unknown key MODEL.COLOR"),
        ("MODEL:\n  TYPE: mbanynet\nBOGUS: 1\n", "unknown key BOGUS"),
        ("MODEL:\n  TYPE: mbanynet\nANYNET:\n  DEPTH: [[1]]\n", "unknown key ANYNET.DEPTH"),
    ],
)
def test_unknown_keys(write_cfg, text, key):
    assert key in refused(write_cfg(text))


def test_yacs_decoding_and_deprecated_keys(write_cfg):
    cfg = variant()
    cfg["OPTIM"] = {"WEIGHT_DECAY": "1e-5", "GAMMA": 0.1}  # yacs literal_evals strings; OPTIM.GAMMA is deprecated
    cfg["TEST"] = {"POWERSAVE_LEVEL": 128}
    loaded = load_config(write_cfg(cfg))
    assert loaded.values["OPTIM.WEIGHT_DECAY"] == 1e-5
    assert loaded.values["TEST.POWERSAVE_LEVEL"] == 128


def test_type_mismatch(write_cfg):
    assert "ANYNET.HEAD_W: expected int" in refused(write_cfg(variant(HEAD_W="wide")))


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"DEPTHS": [3, [2, 1]]}, "ANYNET.DEPTHS stage 1: expected a non-empty list"),
        ({"DEVICES": ["cpu", "npu"]}, "ANYNET.DEVICES: unknown processor 'npu'"),
        ({"DEVICES": ["cpu", "cpu"]}, "ANYNET.DEVICES: 'cpu' is listed twice"),
        ({"STRIDES": [[1, 2], [2, 2]]}, "ANYNET.STRIDES stage 1: branches of one stage must share the stride"),
        ({"ACTIVATION_FUN": ["relu"]}, "ANYNET.ACTIVATION_FUN: has 1 entries but ANYNET.DEVICES has 2"),
        ({"ACTIVATION_FUN": ["relu", "gelu"]}, "ANYNET.ACTIVATION_FUN: unsupported activation 'gelu'"),
        ({"MB_VER": 3}, "ANYNET.MB_VER: must be 1 or 2"),
        (
            {"ORIGINAL_WIDTHS": [20, 24], "STRIDES": [[1, 1], [1, 1]], "WIDTHS": [[8, 8], [20, 4]]},
            "ANYNET.WIDTHS stage 2 branch 0: the first block has no projection (derived input width 20 = 20) but reads 16 channels",
        ),
        ({"BLOCK_TYPE": "vanilla_block"}, "ANYNET.BLOCK_TYPE: 'vanilla_block' is not supported"),
        ({"STEM_TYPE": "patchify"}, "ANYNET.STEM_TYPE: 'patchify' is not supported"),
        ({"MB_DOWNSAMPLE": False}, "ANYNET.MB_DOWNSAMPLE: false is not supported"),
        ({"BLOCK_TYPE": "mbconv"}, "ANYNET.KERNELS: mbconv needs one kernel size per stage"),
        ({"BLOCK_TYPE": "res_bottleneck_block", "GROUP_WS": [[8, 8], [3, 8]]}, "ANYNET.GROUP_WS stage 2 branch 0: bottleneck width 16"),
        ({"BLOCK_TYPE": "res_bottleneck_block", "GROUP_WS": [[16, 8], [16, 8]]}, "ANYNET.GROUP_WS stage 1 branch 0: bottleneck width 8"),
        ({"BLOCK_TYPE": "res_bottleneck_block", "BOT_MULS": None}, "ANYNET.BOT_MULS: required for res_bottleneck_block"),
        ({"MODEL": {"TYPE": "anynet"}}, "MODEL.TYPE: 'anynet' is not supported"),
    ],
)
def test_invalid_configurations(write_cfg, change, expected):
    assert expected in refused(write_cfg(variant(**change)))


# Inconsistencies the prototype's Keras builder tolerates: built its way with a note; refused by strict=True.
@pytest.mark.parametrize(
    "change, expected, branches, widths",
    [
        ({"STRIDES": [[1, 1, 1], [2, 2]]}, "ANYNET.STRIDES stage 1: has 3 entries but the branches are 2 (the length of the shortest list: ANYNET.DEVICES, ANYNET.DEPTHS, ANYNET.WIDTHS, ANYNET.GROUP_WS); the extra [1] ignored", [2, 2], [16, 24]),
        ({"WIDTHS": [[8, 8], [24]]}, "ANYNET.DEPTHS stage 2: has 2 entries but the branches are 1", [2, 1], [16, 24]),
        ({"GROUP_WS": [[8], [16, 8]]}, "ANYNET.ORIGINAL_WIDTHS stage 1: says 16, but its one branch is 8 wide (ANYNET.WIDTHS) and joins by an identity", [1, 2], [8, 24]),
        ({"WIDTHS": [[8, 8]]}, "ANYNET.DEPTHS: has 2 entries but the stages are 1", [2], [16]),
        ({"ORIGINAL_WIDTHS": [16, 20]}, "ANYNET.ORIGINAL_WIDTHS stage 2: says 20, but the branch widths add up to 24 (16+8), so the stage's output is 24 channels wide", [2, 2], [16, 24]),
        ({"ORIGINAL_WIDTHS": [16]}, "ANYNET.DEPTHS: has 2 entries but the stages are 1", [2], [16]),
        ({"DEVICES": ["cpu"]}, "ANYNET.DEPTHS stage 1: has 2 entries but the branches are 1 (the length of the shortest list: ANYNET.DEVICES)", [1, 1], [8, 16]),
        ({"MB_VER": 1, "ORIGINAL_WIDTHS": [15, 24]}, "ANYNET.ORIGINAL_WIDTHS stage 1: says 15, but each of the 2 branches is projected to 15//2 = 7", [2, 2], [14, 24]),
    ],
)
def test_tolerated_inconsistencies_build_with_a_note(write_cfg, change, expected, branches, widths):
    path = write_cfg(variant(**change))
    cfg = load_config(path)
    assert any(expected in note for note in cfg.notes), cfg.notes
    assert [len(s.branches) for s in cfg.stages] == branches
    assert [s.out_width for s in cfg.stages] == widths
    msg = refused(path, strict=True)
    assert expected in msg and "--strict" in msg


def test_all_problems_reported_at_once(write_cfg):
    msg = refused(write_cfg(variant(DEVICES=["cpu", "tpu"], MB_VER=5)))
    assert "ANYNET.MB_VER" in msg and "ANYNET.DEVICES" in msg and "; " in msg


def test_per_branch_lists_and_scalar_bot_muls(write_cfg):
    cfg = load_config(
        write_cfg(variant(
                BLOCK_TYPE="res_bottleneck_block",
                BOT_MULS=[0.5, [1, 0.5]],
                GROUP_WS=[[4, 4], [8, 4]],
                ACTIVATION_FUN=["relu", "silu"],
            ))
    )
    assert [b.bot_mul for b in cfg.stages[0].branches] == [0.5, 0.5]
    assert [b.bot_mul for b in cfg.stages[1].branches] == [1, 0.5]
    assert [b.activation for b in cfg.stages[1].branches] == ["relu", "silu"]


def test_make_divisible():
    assert make_divisible(48.0) == 48  # EN-B5-CD stage 1: convfirst 48 -> 48
    assert make_divisible(24 / 40 * 24) == 16
    assert make_divisible(3.0) == 8
    assert make_divisible(11.0) == 16  # 8 would be more than 10% below 11


# --- The prototype's own inconsistent configurations (docs/nnstretch-configs.md) ---------------------------


@pytest.mark.parametrize(
    "name, expected",
    [
        ("mi_EN-B5-C", ["ANYNET.ORIGINAL_WIDTHS stage 5: says 172, but its one branch is 176 wide"]),
        ("mi_EN-L4-CD", ["ANYNET.STRIDES stage 1: has 2 entries but the branches are 1", "ANYNET.STRIDES stage 7"]),
        (
            "mi_RX-1.6-CDG",
            [
                "ANYNET.STRIDES stage 1: has 3 entries but the branches are 2",
                "ANYNET.ORIGINAL_WIDTHS stage 3",
                "says 696, but the branch widths add up to 624 (312+168+144)",
                "ANYNET.ORIGINAL_WIDTHS stage 4",
                "says 1896, but the branch widths add up to 1872 (696+672+504)",
            ],
        ),
        ("mi_RX-4-CDG", ["ANYNET.ORIGINAL_WIDTHS stage 4", "says 2360, but the branch widths add up to 2320 (960+720+640)"]),
    ],
)
def test_prototype_inconsistent_configs_are_noted_or_refused_when_strict(name, expected):
    notes = " ".join(load_config(PROTOTYPE / f"{name}.yaml").notes)
    msg = refused(PROTOTYPE / f"{name}.yaml", strict=True)
    for part in expected:
        assert part in notes and part in msg


def test_prototype_varying_branch_counts_load():
    cfg = load_config(PROTOTYPE / "pixel_EN-L4-CG.yaml")
    assert [len(s.branches) for s in cfg.stages] == [2, 2, 2, 2, 2, 2, 1]
    assert cfg.mb_ver == 1 and cfg.activation == "relu"
