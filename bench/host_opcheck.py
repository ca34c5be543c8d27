"""Each op of a host bundle timed alone against its predicted time: which kernels the cost model misprices.

    .venv/bin/python bench/host_opcheck.py BUNDLE.stretch TARGET.yaml [--runs 30] [--top 20]

Every op of every partition of BUNDLE (compiled for the measured target TARGET.yaml, `stretchc calibrate -t host`)
is written as a one-op TFLite model (its constant inputs kept, the rest model inputs, its quantization as the
partition has it), timed with the same LiteRT CPU kernels on one thread as the calibration times its
micro-benchmarks (minimum over `--runs`), and compared with the cost model's price of the op (`CostModel.ops_ms`
of its profile, plus one invoke's dispatch as the micro-benchmarks were fitted with). Whether XNNPACK took the op
is read from the interpreter's op list. Prints the ops summed by op kind, shape class (`profile.SHAPE_CLASSES`),
dtype and whether XNNPACK took them, the worst ops, and the totals. Ops timed alone run with warm caches and pay
one invoke each, so their sum is not the bundle's latency: the table is for finding mispriced kernels.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stretchc.costmodel import CostModel, profile_node, shape_class  # noqa: E402
from stretchc.costmodel.microbench import PROCESSOR, Timer  # noqa: E402
from stretchc.targets import load_target  # noqa: E402
from stretchc.tflite_io import emit_model, import_model  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundle", type=Path)
    ap.add_argument("target", type=Path)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--top", type=int, default=20)
    args = ap.parse_args(argv)
    target = load_target(str(args.target))
    cm = CostModel(target)
    manifest = json.loads((args.bundle / "manifest.json").read_text())
    rows = []
    for part in manifest["partitions"]:
        graph = import_model((args.bundle / part["file"]).read_bytes())
        for node in graph.nodes:
            prof = profile_node(node)
            if prof is None:
                continue
            dtype = next((v.dtype for v in node.outputs if v.dtype in ("float32", "int8")), "float32")
            inputs = [v for v in node.inputs if v is not None and v.data is None]
            model = emit_model([node], inputs, list(node.outputs), description="opcheck")
            timer = Timer(model, warmup=3)
            timer.run(args.runs)
            ms = timer.best
            # a one-op model: its op, and a delegate node too when XNNPACK took it
            delegated = any(op["op_name"] == "DELEGATE" for op in timer.it._get_ops_details())
            predicted = cm.ops_ms([prof], PROCESSOR, dtype) + cm.dispatch_ms[PROCESSOR]
            rows.append((f"{node.kind} {shape_class(node)}".strip(), dtype, delegated, node.kind, ms, predicted, tuple(node.outputs[0].shape)))
    by: dict[tuple[str, str, bool], list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for cls, dtype, dlg, _, ms, pred, _ in rows:
        b = by[(cls, dtype, dlg)]
        b[0] += 1
        b[1] += ms
        b[2] += pred
    print(f"{'class':<28} {'dtype':<8} {'xnnpack':<7} {'ops':>4} {'measured ms':>12} {'predicted ms':>12} {'ratio':>6}")
    for (cls, dtype, dlg), (n, ms, pred) in sorted(by.items(), key=lambda kv: -kv[1][1]):
        print(f"{cls:<28} {dtype:<8} {str(dlg):<7} {n:>4} {ms:>12.3f} {pred:>12.3f} {ms / pred:>6.2f}")
    print("\nworst ops (measured / predicted):")
    for cls, dtype, dlg, kind, ms, pred, shape in sorted(rows, key=lambda r: -(r[4] - r[5]))[: args.top]:
        print(f"  {kind:<20} {cls:<28} {dtype:<8} xnnpack={dlg!s:<5} out {shape}  {ms:.3f} ms vs {pred:.3f} ms")
    total_ms, total_pred = sum(r[4] for r in rows), sum(r[5] for r in rows)
    print(f"\n{len(rows)} ops: measured {total_ms:.2f} ms alone, predicted {total_pred:.2f} ms ({100 * (total_pred - total_ms) / total_ms:+.1f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
