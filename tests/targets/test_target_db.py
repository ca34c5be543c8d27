"""The target database: every phone loads, processors and refusals are right, bad files name the field."""

from __future__ import annotations

import pytest
import yaml

from stretchc.cli import main
from stretchc.errors import StretchError
from stretchc.targets import DATA_DIR, known_targets, load_target


def test_required_phones_present_and_valid() -> None:
    names = known_targets()
    for n in ("pixel6", "pixel4", "mi9", "pixel3", "galaxy-s21", "galaxy-s23"):
        assert n in names
    socs = {load_target(n).raw["soc"]["name"] for n in names}
    assert {"Snapdragon 888", "Snapdragon 8 Gen 2", "Snapdragon 855", "Snapdragon 845", "Google Tensor G1"} <= socs


def test_processors_and_pixel6_threads() -> None:
    assert load_target("pixel6").processors == ("cpu", "gpu")
    from stretchc.backends import fallback

    assert fallback().threads(load_target("pixel6")) == (2, (6, 7))
    for n in ("mi9", "pixel4", "pixel3"):
        assert "dsp" in load_target(n).processors


@pytest.mark.parametrize(("name", "instead"), [("galaxy-s21", "QNN"), ("galaxy-s23", "the npu backend"), ("galaxy-s24", "the npu backend")])
def test_new_snapdragons_refuse_dsp_naming_what_reaches_their_npu(name: str, instead: str) -> None:
    with pytest.raises(StretchError) as e:
        load_target(name).require("dsp", what="--place s1.b0=dsp")
    assert instead in e.value.message and "not in hexagon_nn" in e.value.message


def test_every_target_names_its_calibration_set_and_protocol() -> None:
    from stretchc.costmodel.calibration import load_calibration

    sets = load_calibration().sets
    for n in known_targets():
        raw = load_target(n).raw
        assert raw["calibration"] in sets and raw["protocol"]["source"]
        for pt in sets[raw["calibration"]]:
            assert pt.source


def test_malformed_target_names_the_field(tmp_path) -> None:  # type: ignore[no-untyped-def]
    raw = yaml.safe_load((DATA_DIR / "mi9.yaml").read_text())
    raw["cpu"]["threads"] = "four"
    bad = tmp_path / "phone.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(StretchError) as e:
        load_target(str(bad))
    assert "cpu.threads" in e.value.message
    raw["protocol"]["cpu_kernels"] = "ruy"
    raw["cpu"]["threads"] = 4
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(StretchError) as e:
        load_target(str(bad))
    assert "protocol.cpu_kernels" in e.value.message
    raw["protocol"]["cpu_kernels"] = "builtin"
    raw["calibration"] = "sd999"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(StretchError) as e:
        load_target(str(bad))
    assert "calibration: not a known calibration set" in e.value.message and "sd855" in e.value.message
    assert "sd999" not in e.value.message  # the file's text is never quoted (issue 23)


def test_user_target_file_is_usable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    raw = yaml.safe_load((DATA_DIR / "pixel6.yaml").read_text())
    raw["name"] = "myphone"
    p = tmp_path / "myphone.yaml"
    p.write_text(yaml.safe_dump(raw))
    assert load_target(str(p)).name == "myphone"


def test_unknown_target_lists_known(capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StretchError) as e:
        load_target("nokia3310")
    for n in known_targets():
        assert n in e.value.message


def test_targets_cli(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["targets"]) == 0
    out = capsys.readouterr().out
    assert "galaxy-s23" in out and "pixel3" in out
    assert main(["targets", "show", "galaxy-s21"]) == 0
    assert "QNN" in capsys.readouterr().out


@pytest.mark.parametrize(("name", "instead"), [("galaxy-s21", "libQnnTFLiteDelegate.so"), ("galaxy-s23", "LiteRT's NPU accelerator")])
def test_compile_refuses_dsp_placement_on_new_snapdragons_naming_what_reaches_their_npu(name: str, instead: str, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """Snapdragon 888 and later: hexagon_nn v1.20 does not know the SoC; the message points at what reaches its NPU
    (Qualcomm's QNN delegate, or the npu backend where the target has one)."""
    import onnx

    from tests.backends.dsp.models import conv_model

    onnx.save(conv_model(name="tiny"), str(tmp_path / "m.onnx"))
    out = tmp_path / "b.stretch"
    code = main(["compile", str(tmp_path / "m.onnx"), "-t", name, "-o", str(out), "--place", "main=dsp", "--calib", "random"])
    err = capsys.readouterr().err
    assert code != 0 and not out.exists()
    assert "error[no-such-processor]" in err and "--place main=dsp" in err
    assert instead in err and "cannot run the DSP" in err
