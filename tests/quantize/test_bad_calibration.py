"""Issue 23: bad calibration data, preprocessing and input arrays are one-line user errors.

NaN, infinities and outliers in calibration data and `--input` / `--const-input` arrays (defects 1, 2),
`--preprocess` and its stretchc.toml twin parsed and checked completely whatever the data (3, 4, 17), images of
every mode scaled by their own range (5), a sample cap with lazy reads (8), FIFOs refused (9). Compiles use
examples/branchy.onnx (its lowering is cached for the session); every refusal comes before the calibrator runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper
from PIL import Image

from stretchc.commands._inputs import read_inputs
from stretchc.console import Console, set_console
from stretchc.errors import StretchError
from stretchc.project_config import load_project_config
from stretchc.quantize.calibration_data import MAX_SAMPLES, check_calibration_options, find_bad_value, load_calibration_data

from tests.conftest import REPO
from tests.core.test_user_errors import _cli, _one_line_error, _save

MODEL = REPO / "examples" / "branchy.onnx"  # input [1, 3, 160, 160]
INT8 = ["-t", "pixel6", "--precision", "int8"]
INPUTS = [("input", (1, 3, 8, 8), "float32")]
GREY = [("input", (1, 1, 8, 8), "float32")]


@contextlib.contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    """Fail (TimeoutError) instead of hanging: what a FIFO did before it was refused."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def console() -> Iterator[Console]:
    """A console whose diagnostics the test reads."""
    c = Console(stream=io.StringIO())
    set_console(c)
    yield c
    set_console(Console())


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def _refused(exc: pytest.ExceptionInfo[StretchError], code: str, *needles: str) -> None:
    assert exc.value.code == code, exc.value.one_line()
    assert all(n in exc.value.message for n in needles), exc.value.one_line()


def _pngs(folder: Path, n: int, size: int = 8) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"img{i:04d}.png")
    return folder


# ---- defects 1 and 2: NaN, infinities and outliers ---------------------------------------------------


def _spoil(x: np.ndarray, kind: str) -> None:
    if kind == "nan-in-every-sample":
        x[:, 1, 2, 3] = np.nan
    elif kind == "row-of-1e38":
        x[3, 1, 2, :] = 1e38
    else:
        x[3, 1, 2, 3] = {"inf": np.inf, "-inf": -np.inf, "1e30": 1e30}[kind]


@pytest.mark.parametrize("kind", ["inf", "-inf", "1e30", "row-of-1e38", "nan-in-every-sample"])
def test_compile_refuses_non_finite_and_outlying_calibration_values(tmp_path: Path, capsys, kind: str) -> None:  # type: ignore[no-untyped-def]
    """Were: a segfault (exit 139) and a staging folder left behind (inf, a row of 1e38), a 0 dB bundle (1e30),
    error[internal] "would have two producers" (NaN)."""
    x = np.random.default_rng(0).random((6, 3, 160, 160), dtype=np.float32)
    _spoil(x, kind)
    np.save(tmp_path / "calib.npy", x)
    before = _digests(tmp_path)
    rc, err = _cli(capsys, ["compile", str(MODEL), *INT8, "-q", "--calib", str(tmp_path / "calib.npy"), "-o", str(tmp_path / "x.stretch")])
    _one_line_error(rc, err, "bad-calibration")
    sample, position = ("0", "(0, 1, 2, 3)") if kind.startswith("nan") else ("3", "(0, 1, 2, 0)" if kind.startswith("row") else "(0, 1, 2, 3)")
    assert "calib.npy" in err and f"sample {sample}" in err and position in err, err
    assert _digests(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["calib.npy"]


def test_outliers_are_found_per_input_across_the_data_set(tmp_path: Path) -> None:
    x = np.random.default_rng(1).normal(size=(5, 3, 8, 8)).astype(np.float32)
    x[2, 0, 4, 4] = 5e4  # 10^4 x beyond the 99th percentile of |x| (about 2.6)
    np.savez(tmp_path / "a.npz", input=x)
    with pytest.raises(StretchError) as exc:
        load_calibration_data(str(tmp_path / "a.npz"), INPUTS)
    _refused(exc, "bad-calibration", "sample 2", "(0, 0, 4, 4)", "50000")
    assert exc.value.location.file == str(tmp_path / "a.npz")


@pytest.mark.parametrize(
    "data",
    [
        np.random.default_rng(0).normal(size=(50, 64)),  # Gaussian
        np.random.default_rng(0).lognormal(sigma=1.5, size=(50, 64)),  # heavy-tailed
        np.random.default_rng(0).integers(0, 256, (50, 64)).astype(np.float64),  # raw 8-bit pixels
        np.where(np.arange(3200).reshape(50, 64) % 300 == 0, 1.0, 0.0),  # sparse: 99.7 % zeros
        np.zeros((50, 64)),
        np.full((50, 64), -1e9),  # a mask constant: all large is not an outlier
    ],
    ids=["gaussian", "lognormal", "pixels", "sparse", "zeros", "large-constant"],
)
def test_ordinary_data_passes_the_screen(data: np.ndarray) -> None:
    assert find_bad_value(list(data.astype(np.float32))) is None
    assert find_bad_value([np.array([1, 10**9], np.int64)]) is None  # integers (indices, ids) are not screened


def test_images_are_screened_after_preprocessing(tmp_path: Path) -> None:
    folder = _pngs(tmp_path / "imgs", 2)
    with pytest.raises(StretchError) as exc:  # std = 1e-45 is finite and > 0, but x / std overflows float32
        load_calibration_data(str(folder), INPUTS, preprocess="std=1e-45")
    _refused(exc, "bad-calibration", "sample 0", "not a finite number")
    assert exc.value.location.file == str(folder / "img0000.png")


@pytest.mark.parametrize("kind", ["inf", "nan", "outlier"])
def test_input_arrays_are_screened(tmp_path: Path, kind: str) -> None:
    x = np.random.default_rng(0).random((1, 3, 4, 4), dtype=np.float32)
    x[0, 2, 1, 3] = {"inf": np.inf, "nan": np.nan, "outlier": 1e30}[kind]
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(StretchError) as exc:
        read_inputs([f"input={tmp_path / 'x.npy'}"])
    _refused(exc, "bad-input-data", "--input input", "(0, 2, 1, 3)")
    assert exc.value.location.file == str(tmp_path / "x.npy")


def test_compile_refuses_a_const_input_with_an_infinity(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4]) for n in ("a", "b", "y")]
    model = _save(tmp_path, "add", [helper.make_node("Add", ["a", "b"], ["y"])], vi[:2], vi[2:])
    np.save(tmp_path / "b.npy", np.array([[1.0, -np.inf, 0.0, 2.0]], np.float32))
    rc, err = _cli(capsys, ["compile", str(model), "--const-input", f"b={tmp_path / 'b.npy'}", "-o", str(tmp_path / "o")])
    _one_line_error(rc, err, "bad-input-data")
    assert "--const-input b" in err and "(0, 1)" in err and not (tmp_path / "o").exists()


# ---- defects 3, 4, 17: --preprocess and [preprocessing] checked completely --------------------------


@pytest.mark.parametrize(
    "spec, needle",
    [
        ("mean=,std=1:1:1", "mean needs 1 value"),  # defect 3: was error[internal] (a reshape ValueError)
        ("mean=0.485:0.456", "it has 2"),  # defect 4: was accepted, the first value used for every channel
        ("std=nan:1:1", "finite and > 0"),  # defect 2's other trigger
        ("std=0.2:0:0.2", "finite and > 0"),
        ("mean=inf", "finite"),
        ("size=160x160x3", "S or HxW"),
        ("size=160x", "is not a number"),
        ("size=16.5", "positive integers"),
        ("mean=0.5,mean=0.4", "given twice"),
    ],
)
def test_compile_refuses_bad_preprocessing(tmp_path: Path, capsys, spec: str, needle: str) -> None:  # type: ignore[no-untyped-def]
    folder = _pngs(tmp_path / "imgs", 3, size=160)
    before = _digests(folder)
    rc, err = _cli(capsys, ["compile", str(MODEL), *INT8, "--calib", str(folder), "--preprocess", spec, "-o", str(tmp_path / "x.stretch")])
    _one_line_error(rc, err, "usage")
    assert needle in err, err  # and refused before the lowering: no progress lines (_one_line_error)
    assert _digests(folder) == before and sorted(p.name for p in tmp_path.iterdir()) == ["imgs"]


@pytest.mark.parametrize("spec", ["size=224,bogus", "size=160"])
def test_preprocess_with_array_data_is_refused(tmp_path: Path, capsys, spec: str) -> None:  # type: ignore[no-untyped-def]
    """Defect 17: --preprocess was not even parsed for a .npy; now parsed always, and refused for arrays."""
    np.save(tmp_path / "calib.npy", np.random.default_rng(0).random((3, 3, 160, 160), dtype=np.float32))
    rc, err = _cli(capsys, ["compile", str(MODEL), *INT8, "--calib", str(tmp_path / "calib.npy"), "--preprocess", spec, "-o", str(tmp_path / "x.stretch")])
    _one_line_error(rc, err, "usage")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calib.npy"]
    with pytest.raises(StretchError) as exc:  # verify --input-dir reads data the same way
        load_calibration_data(str(tmp_path / "calib.npy"), [("input", (1, 3, 160, 160), "float32")], preprocess=spec)
    assert exc.value.code == "usage"


def test_preprocessing_table_is_not_used_for_array_data(tmp_path: Path) -> None:
    np.save(tmp_path / "calib.npy", np.zeros((2, 3, 8, 8), np.float32))
    check_calibration_options(str(tmp_path / "calib.npy"), {"mean": [0.5]})  # the project default is for images
    with pytest.raises(StretchError) as exc:
        check_calibration_options("random", "mean=0.5")
    _refused(exc, "usage", "applies to a folder of images")


@pytest.mark.parametrize(
    "table",
    ["std = []", "mean = [0.485, 0.456]", "std = [nan, 1.0, 1.0]", "mean = inf", "size = 0", "size = true", 'mean = "a"', "scale = 2"],
)
def test_preprocessing_table_is_checked(tmp_path: Path, capsys, table: str) -> None:  # type: ignore[no-untyped-def]
    conf = tmp_path / "stretchc.toml"
    conf.write_text(f"[preprocessing]\n{table}\n")
    with pytest.raises(StretchError) as exc:
        load_project_config(conf)
    _refused(exc, "bad-config", "[preprocessing]")
    assert exc.value.location.file == str(conf)
    if table == "std = []":  # defect 3's toml form, through the command line
        rc, err = _cli(capsys, ["compile", str(MODEL), "--config", str(conf), "-o", str(tmp_path / "x.stretch")])
        _one_line_error(rc, err, "bad-config")


def test_mean_and_std_counts_follow_the_model_channels(tmp_path: Path) -> None:
    folder = _pngs(tmp_path / "imgs", 1)
    with pytest.raises(StretchError) as exc:
        load_calibration_data(str(folder), GREY, preprocess="mean=0.5:0.5:0.5")
    _refused(exc, "usage", "1 channel(s)")
    broadcast = load_calibration_data(str(folder), INPUTS, preprocess="mean=0.5,std=0.25").samples[0]["input"]
    per_channel = load_calibration_data(str(folder), INPUTS, preprocess="mean=0.5:0.5:0.5,std=0.25:0.25:0.25").samples[0]["input"]
    np.testing.assert_array_equal(broadcast, per_channel)


# ---- defect 5: images of every mode keep their range ------------------------------------------------


def test_16_bit_png_keeps_its_range(tmp_path: Path) -> None:
    """Was: converted to RGB by saturating, 99.6 % of the pixels 1.0."""
    ramp = (np.arange(64, dtype=np.uint32).reshape(8, 8) * 1000).astype(np.uint16)  # 0 .. 63000
    (tmp_path / "imgs").mkdir()
    Image.fromarray(ramp).save(tmp_path / "imgs" / "deep.png")
    assert Image.open(tmp_path / "imgs" / "deep.png").mode == "I;16"
    x = load_calibration_data(str(tmp_path / "imgs"), INPUTS).samples[0]["input"]
    assert x.shape == (1, 3, 8, 8)
    for c in range(3):
        np.testing.assert_allclose(x[0, c], ramp / 65535.0, atol=1e-6)


def _image(mode: str) -> tuple[Image.Image, str]:
    """An 8x8 image in `mode` whose every pixel is 40 % of the mode's range, and the format to save it in."""
    grey = Image.new("RGB", (8, 8), (102, 102, 102))
    wide = {"I;16": np.uint16, "I;16B": ">u2", "I": np.int32}
    if mode in wide:
        return Image.fromarray(np.full((8, 8), 26214, dtype=wide[mode])), "TIFF" if mode == "I" else "PNG"
    if mode == "F":
        return Image.fromarray(np.full((8, 8), 0.4, np.float32)), "TIFF"
    if mode == "P":
        return grey.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"
    return grey.convert(mode), "JPEG" if mode == "CMYK" else "PNG"


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "I;16", "I;16B", "I", "F"])
def test_image_modes_are_scaled_by_their_range(tmp_path: Path, mode: str) -> None:
    im, fmt = _image(mode)
    (tmp_path / "imgs").mkdir()
    im.save(tmp_path / "imgs" / "a.png", format=fmt)  # Pillow reads the content, whatever the suffix
    for inputs in (INPUTS, GREY):
        np.testing.assert_allclose(load_calibration_data(str(tmp_path / "imgs"), inputs).samples[0]["input"], 0.4, atol=0.01)


def test_one_bit_and_out_of_range_images(tmp_path: Path) -> None:
    (tmp_path / "imgs").mkdir()
    Image.new("1", (8, 8), 1).save(tmp_path / "imgs" / "a.png")
    np.testing.assert_array_equal(load_calibration_data(str(tmp_path / "imgs"), INPUTS).samples[0]["input"], 1.0)
    Image.fromarray(np.full((8, 8), 70000, np.int32)).save(tmp_path / "imgs" / "a.png", format="TIFF")
    with pytest.raises(StretchError) as exc:
        load_calibration_data(str(tmp_path / "imgs"), INPUTS)
    _refused(exc, "bad-calibration", "outside 0..65535")


# ---- defect 8: a sample cap, lazy reads --------------------------------------------------------------


def test_large_image_folders_are_capped_and_read_lazily(tmp_path: Path, console: Console) -> None:
    """Was: every image decoded and held (3.6 GB resident for 10,000 tiny images, and growing)."""
    count = MAX_SAMPLES + 100
    folder = _pngs(tmp_path / "imgs", count, size=2)
    (folder / "img0005.png").write_bytes(b"not a png")  # evenly spaced: 0, 1, 2, 3, 4, 6, ... skip index 5
    cal = load_calibration_data(str(folder), [("input", (1, 3, 2, 2), "float32")])
    assert len(cal.samples) == MAX_SAMPLES
    assert [d.code for d in console.diagnostics] == ["calibration-capped"] and str(count) in console.diagnostics[0].message


def test_large_arrays_are_capped_evenly_with_their_labels(tmp_path: Path, console: Console) -> None:
    x = np.arange(12 * 3 * 8 * 8, dtype=np.float32).reshape(12, 3, 8, 8) + 1
    np.savez(tmp_path / "a.npz", input=x, labels=np.arange(12))
    np.save(tmp_path / "a.npy", x)
    for name in ("a.npz", "a.npy"):
        cal = load_calibration_data(str(tmp_path / name), INPUTS, max_samples=4)
        np.testing.assert_array_equal(np.concatenate([s["input"] for s in cal.samples]), x[[0, 3, 6, 9]])
    np.testing.assert_array_equal(load_calibration_data(str(tmp_path / "a.npz"), INPUTS, max_samples=4).labels, [0, 3, 6, 9])
    assert {d.code for d in console.diagnostics} == {"calibration-capped"}


# ---- defect 9: FIFOs and other non-regular files ------------------------------------------------------


def test_fifo_as_calibration_data_is_refused(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """Was: the compile hung forever in open()."""
    os.mkfifo(tmp_path / "calib.npy")
    with _deadline(120):
        rc, err = _cli(capsys, ["compile", str(MODEL), *INT8, "--calib", str(tmp_path / "calib.npy"), "-o", str(tmp_path / "x.stretch")])
        _one_line_error(rc, err, "bad-calibration")
        assert "not a regular file" in err  # and refused before the lowering: no progress lines
        with pytest.raises(StretchError) as exc:
            load_calibration_data(str(tmp_path / "calib.npy"), INPUTS)
        _refused(exc, "bad-calibration", "not a regular file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calib.npy"]


def test_fifo_in_an_image_folder_is_refused(tmp_path: Path) -> None:
    folder = _pngs(tmp_path / "imgs", 2)
    os.mkfifo(folder / "img0002.png")
    with _deadline(60), pytest.raises(StretchError) as exc:
        load_calibration_data(str(folder), INPUTS)
    _refused(exc, "bad-calibration", "not a regular file")
    assert exc.value.location.file == str(folder / "img0002.png")


def test_fifo_as_input_is_refused(tmp_path: Path) -> None:
    """Was: file-not-found, "does not exist"."""
    os.mkfifo(tmp_path / "x.npy")
    with _deadline(60), pytest.raises(StretchError) as exc:
        read_inputs([f"input={tmp_path / 'x.npy'}"])
    _refused(exc, "bad-input-data", "not a regular file")
