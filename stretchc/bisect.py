"""The numeric bisect: which pass of a pipeline first moves the model's outputs out of tolerance.

`NumericBisect` is a pass-manager instrument. Before the first pass (the lowered, imported model) and after
every pass, it emits the whole module as one TFLite model (stretchc/whole_model.py: partitions ignored, sync
nodes removed, quantized nodes as they are), runs it on the given feeds and compares every output with the
reference (ONNX Runtime). A pass after which that model's bytes are unchanged is not run again: its row
repeats the numbers of the last model run. Criterion per row, as in `stretchc verify`: while the module is
all float32, `max|err| <= atol + rtol * max|ref|` (atol defaulting to 1e-4 x max|ref|); once it holds
reduced-precision tensors (int8, uint8, int16, float16), SQNR >= min_sqnr (default 20 dB).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from stretchc.ir import Module
from stretchc.irtext import print_module
from stretchc.litert import load_interpreter
from stretchc.passmanager import Instrument, PassContext, PassRun
from stretchc.precision import DEFAULT_MIN_SQNR
from stretchc.verify import Check, ErrorStats
from stretchc.whole_model import to_module_layout, to_onnx_layout, whole_model

REDUCED_PRECISION = ("int8", "uint8", "int16", "float16")
LOWERED = "(lowered model)"


@dataclass
class Row:
    """The model after pass `index` (0: before the first pass) compared with the reference."""

    index: int
    label: str
    ir_changed: bool
    evaluated: bool  # False: the emitted model was the same as the last one run, whose numbers are repeated
    reduced_precision: bool
    checks: list[Check] = field(default_factory=list)
    error: str | None = None  # the model could not be built or run

    @property
    def ok(self) -> bool:
        return self.error is None and all(c.ok for c in self.checks)


def reduced_precision(module: Module) -> bool:
    """Whether any tensor of the module is below float32 precision (quantized or half)."""
    return any(v.dtype in REDUCED_PRECISION for v in module.graph.values())


class NumericBisect(Instrument):
    """Evaluates the module before the first pass and after every pass (see the module docstring)."""

    def __init__(
        self,
        feeds: list[dict[str, np.ndarray]],
        reference: list[dict[str, np.ndarray]],
        *,
        atol: float | None = None,
        rtol: float = 0.0,
        min_sqnr: float | None = None,
    ) -> None:
        self.feeds, self.reference = feeds, reference
        self.atol, self.rtol = atol, rtol
        self.min_sqnr = min_sqnr if min_sqnr is not None else DEFAULT_MIN_SQNR
        self.rows: list[Row] = []
        self.models_run = 0
        self._text = ""
        self._model = b""
        self._last: Row | None = None  # the last row whose model was run

    def run_start(self, module: Module, ctx: PassContext) -> None:
        self._evaluate(0, LOWERED, module)

    def after_pass(self, run: PassRun, module: Module, ctx: PassContext) -> None:
        self._evaluate(run.index, run.pass_.name, module)

    def first_bad(self) -> Row | None:
        return next((r for r in self.rows if not r.ok), None)

    def _evaluate(self, index: int, label: str, module: Module) -> None:
        text = print_module(module)
        row = Row(index, label, ir_changed=index > 0 and text != self._text, evaluated=False, reduced_precision=reduced_precision(module))
        self._text = text
        try:
            model, out_names = whole_model(module)
        except Exception as exc:  # noqa: BLE001 - a pass left something TFLite cannot express: that is the finding
            row.error = f"cannot emit the model: {type(exc).__name__}: {exc}"
            self.rows.append(row)
            return
        if self._last is not None and model == self._model:
            row.checks, row.error = self._last.checks, self._last.error
        else:
            row.evaluated = True
            self.models_run += 1
            try:
                row.checks = self._checks(module, model, out_names, row.reduced_precision)
            except (ValueError, RuntimeError) as exc:
                row.error = f"the model does not run: {exc}"
            self._model, self._last = model, row
        self.rows.append(row)

    def _checks(self, module: Module, model: bytes, out_names: list[str], reduced: bool) -> list[Check]:
        it = load_interpreter(model_content=model)
        in_idx = {d["name"]: d["index"] for d in it.get_input_details()}
        out_idx = {d["name"]: d["index"] for d in it.get_output_details()}
        stats = {i.name: ErrorStats() for i in module.outputs}
        values = module.graph.value_map()
        for feed, ref in zip(self.feeds, self.reference):
            for name, arr in to_module_layout(module, feed).items():
                it.set_tensor(in_idx[name], arr)
            it.invoke()
            for info, tensor in zip(module.outputs, out_names):
                stats[info.name].add(to_onnx_layout(info, it.get_tensor(out_idx[tensor]), values[info.value].quant), ref[info.name])
        min_sqnr = self.min_sqnr if reduced else None
        return [stats[i.name].check("output", i.name, i.name, self.atol, self.rtol, min_sqnr) for i in module.outputs]

    def table(self, *, notes: list[str] | None = None) -> str:
        """One line per row and output; the first row out of tolerance marked `>>`, then `notes` about it."""
        bad = self.first_bad()
        lines = [
            f"numeric bisect against ONNX Runtime on {len(self.feeds)} input(s) ({self.models_run} model(s) run):",
            f"     {'#':>2}  {'after':<26} {'IR':<7} {'model':<5} {'output':<14} {'max|err|':>10} {'SQNR dB':>8} {'criterion':>12}  result",
        ]
        for row in self.rows:
            mark = ">>" if row is bad else "  "
            changed = "-" if row.index == 0 else "changed" if row.ir_changed else "same"
            model = "run" if row.evaluated else "same"
            head = f"  {mark} {row.index:>2}  {row.label[:26]:<26} {changed:<7} {model:<5}"
            if row.error is not None:
                lines.append(f"{head} {row.error}")
                continue
            for k, c in enumerate(row.checks):
                crit = f">={c.min_sqnr:.1f} dB" if c.min_sqnr is not None else f"<={c.tolerance:.2e}"
                db = f"{c.sqnr_db:8.1f}" if c.sqnr_db is not None and np.isfinite(c.sqnr_db) else f"{'inf':>8}"
                prefix = head if k == 0 else " " * len(head)
                lines.append(f"{prefix} {c.name[:14]:<14} {c.max_abs_error:10.3e} {db} {crit:>12}  {'ok' if c.ok else 'OUT'}")
        if bad is None:
            lines.append("  every row is within tolerance")
        else:
            where = "the lowering (before any pass)" if bad.index == 0 else f"pass {bad.index}, {bad.label}"
            lines.append(f"  first out of tolerance: {where}")
            lines += [f"  {note}" for note in notes or []]
        return "\n".join(lines)
