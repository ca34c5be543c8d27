"""Bounded, seeded fuzz of the ONNX front door: models mutated from the example (shapes, types, ops,
attributes, edges, initializers, opsets, raw bytes) go through `stretchc compile`. Every outcome is a bundle
or a one-line user error; never exit 70, never a traceback, never a hang. The same seed gives the same
models; FUZZ_CASES sizes the run (~25 s here: most mutations are refused before the lowering, the rest are
lowered by onnx2tf)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from stretchc.cli import main
from stretchc.examples import branched_model

SEED = 5
FUZZ_CASES = 200
ALLOWED = {0, 2, 3, 4}  # ok, usage, bad input, unsupported
OPS = ["Relu", "Conv", "Add", "Concat", "MaxPool", "Gather", "Reshape", "Transpose", "MatMul", "Softmax", "Slice", "Split", "Mystery"]
ELEM_TYPES = [TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.INT64, TensorProto.STRING, TensorProto.BOOL, 0, 99]

# slow (not in `scripts/test.sh --fast`): 200 mutated models through the front door, the valid ones lowered with onnx2tf (about 6 s)
pytestmark = pytest.mark.slow


def _mutate(model: onnx.ModelProto, rng: random.Random) -> None:
    g = model.graph
    if not g.node or not g.output or not g.input:
        return
    node = rng.choice(g.node)
    op = rng.randrange(14)
    if op == 0:  # an input dimension
        dim = rng.choice(g.input[0].type.tensor_type.shape.dim)
        choice = rng.choice([0, -1, 1, 7, 1 << 20, 1 << 40, "sym"])
        if choice == "sym":
            dim.dim_param = "n"
        else:
            dim.dim_value = int(choice)
    elif op == 1:
        g.input[0].type.tensor_type.elem_type = rng.choice(ELEM_TYPES)
    elif op == 2:
        node.op_type = rng.choice(OPS)
    elif op == 3:
        g.node.remove(node)
    elif op == 4 and node.input:  # a dangling or cyclic edge
        node.input[rng.randrange(len(node.input))] = rng.choice(["nowhere", node.output[0], g.output[0].name, ""])
    elif op == 5 and node.output:  # two producers of one value
        node.output[0] = rng.choice([n.output[0] for n in g.node if n.output] or ["x"])
    elif op == 6 and node.attribute:
        attr = rng.choice(node.attribute)
        if attr.ints:
            attr.ints[rng.randrange(len(attr.ints))] = rng.choice([0, -1, 3, 1000, 1 << 40])
        else:
            attr.i = rng.choice([0, -1, 3, 1000, 1 << 40])
    elif op == 7 and g.initializer:  # initializer data that does not match its dims
        t = rng.choice(g.initializer)
        arr = numpy_helper.to_array(t).reshape(-1)
        cut = numpy_helper.from_array(arr[: rng.randrange(max(len(arr), 1))], t.name)
        t.CopyFrom(cut if rng.random() < 0.5 else numpy_helper.from_array(arr.astype(np.float64), t.name))
    elif op == 8:
        model.opset_import[0].version = rng.choice([0, 1, 8, 12, 22, 1000])
    elif op == 9:
        node.domain = rng.choice(["com.microsoft", "ai.onnx.ml", "x"])
    elif op == 10:
        del g.output[:]
    elif op == 11:
        model.ir_version = rng.choice([0, 1, 3, 99])
    elif op == 12 and node.output:  # a constant Gather with indices in and out of range
        n = helper.make_node("Gather", [node.output[0], "fz_idx"], ["fz_out"], axis=1)
        g.node.append(n)
        g.initializer.append(numpy_helper.from_array(np.array([rng.choice([-1, 0, 3, 100, -100])], np.int64), "fz_idx"))
        g.output.append(helper.make_tensor_value_info("fz_out", TensorProto.FLOAT, None))
    else:
        src = rng.choice(g.node)
        if src.output:
            g.node.insert(rng.randrange(len(g.node) + 1), helper.make_node(rng.choice(OPS), [src.output[0]], [f"fz{rng.randrange(1000)}"]))


def _case(base: bytes, rng: random.Random) -> bytes:
    if rng.random() < 0.2:  # raw bytes
        data = bytearray(base)
        for _ in range(rng.randint(1, 10)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data[: rng.randrange(len(data) + 1)] if rng.random() < 0.3 else data)
    model = onnx.load_model_from_string(base)
    for _ in range(rng.choice([1, 1, 2, 3])):
        _mutate(model, rng)
    return model.SerializeToString()


@pytest.mark.timeout(400)
def test_mutated_models_compile_or_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRETCHC_CACHE_DIR", str(tmp_path / "cache"))
    base = branched_model(size=16, width=4, branches=(2,)).SerializeToString()
    rng = random.Random(SEED)
    outcomes: dict[int, int] = {}
    for n in range(FUZZ_CASES):
        path = tmp_path / f"m{n}.onnx"
        path.write_bytes(_case(base, rng))
        capsys.readouterr()
        rc = main(["compile", str(path), "-o", str(tmp_path / "b"), "-q"])
        err = capsys.readouterr().err
        assert rc in ALLOWED and "Traceback" not in err, f"case {n}: exit {rc}: {err[-1500:]}"
        if rc:
            assert err.count("\n") == 1 and err.startswith("error["), f"case {n}: {err[-1500:]}"
        outcomes[rc] = outcomes.get(rc, 0) + 1
    assert outcomes.get(3, 0) > FUZZ_CASES // 3, outcomes
