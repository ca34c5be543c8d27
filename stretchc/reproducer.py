"""Reproducers: what a dump records besides the module so that `stretchc opt` can replay it exactly.

A dump carries one `reproducer {json}` line (sorted keys, no whitespace) with:
- `version`: the stretchc that wrote it;
- `done` / `remaining`: the passes run so far and the rest of the pipeline, spelled in full;
- `target`: the target as given (`spec`, a phone name or a YAML path) and the SHA-256 of its file;
- `place`: the --place overrides;
- `options`: every entry of `ctx.options` but `pipeline` (which is `done` + `remaining`), encoded by
  `encode`: JSON values as they are, numpy arrays by digest in the dump's constant store, `Path`s (data read
  from disk: calibration sets, ...) as the path and the SHA-256 of its content;
- `analyses`: digest of `ctx.report` so far (the facts earlier passes recorded for later ones), stored in
  the constant store as JSON, encoded the same way;
- `failure`: for the dump of a failed pass, the pass and its error.

`influences(ctx)` is the one place that says what influences passes; `Recorder` encodes it, `replay_context`
turns a reproducer back into a PassContext, taking data sources again and checking their digests.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stretchc import __version__
from stretchc.console import Console
from stretchc.errors import StretchError
from stretchc.irtext import ConstantStore
from stretchc.passmanager import Pass, PassContext, print_pipeline

LINE_KIND = "reproducer"
_PATH, _ARRAY, _UNRECORDED = "$path", "$array", "$unrecorded"


def influences(ctx: PassContext) -> dict[str, Any]:
    """Everything besides the module and the pipeline that passes read: target, placement overrides, the
    user's options and the analyses earlier passes recorded (issue 13 turns the last two into typed analyses)."""
    options = {k: v for k, v in ctx.options.items() if k != "pipeline"}
    return {"target": ctx.target, "place": dict(ctx.place), "options": options, "analyses": ctx.report}


def data_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, or of a folder's files (sorted relative paths and their digests)."""
    if path.is_dir():
        from stretchc.depfile import expand

        h = hashlib.sha256()
        for f in expand(path):
            h.update(f"{f.relative_to(path).as_posix()}\0{hashlib.sha256(f.read_bytes()).hexdigest()}\n".encode())
        return h.hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Reproducer:
    """The parsed `reproducer` line of a dump (see the module docstring)."""

    version: str
    done: str
    remaining: str
    target: dict[str, str] | None
    place: dict[str, str]
    options: dict[str, Any]
    analyses: str | None
    failure: dict[str, str] | None = None

    def line(self) -> str:
        return f"{LINE_KIND} " + json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @staticmethod
    def from_text(text: str, *, file: str | None = None) -> Reproducer | None:
        """The reproducer of a dump, or None when the text has none (a hand-written or golden IR file)."""
        for line in text.splitlines():
            if line.startswith(LINE_KIND + " "):
                try:
                    return Reproducer(**json.loads(line[len(LINE_KIND) + 1 :]))
                except (ValueError, TypeError) as exc:
                    raise StretchError("bad-ir", f"malformed reproducer line ({exc})", file=file) from None
            if not line.startswith("#"):
                return None  # the header is over
        return None

    def with_failure(self, pass_name: str, err: StretchError) -> Reproducer:
        return Reproducer(**{**asdict(self), "failure": {"pass": pass_name, "code": err.code, "message": err.message}})


class Recorder:
    """Encodes what influences passes into reproducers, storing arrays and analyses in `store`."""

    def __init__(self, store: ConstantStore) -> None:
        self.store = store
        self._digests: dict[Path, str] = {}  # data sources are hashed once per run

    def reproducer(self, ctx: PassContext, *, done: list[Pass], remaining: list[Pass]) -> Reproducer:
        found = influences(ctx)
        analyses = None
        if found["analyses"]:
            doc = json.dumps(self.encode(found["analyses"], "analyses"), sort_keys=True, separators=(",", ":"))
            analyses = self.store.put(doc.encode(), ".json")
        return Reproducer(
            version=__version__,
            done=print_pipeline(done),
            remaining=print_pipeline(remaining),
            target=self._target(found["target"]),
            place=dict(sorted(found["place"].items())),
            options=self.encode(found["options"], "options"),
            analyses=analyses,
        )

    def _target(self, target: Any) -> dict[str, str] | None:
        if target is None:
            return None
        from stretchc.targets import DATA_DIR

        spec = target.name if target.path.parent == DATA_DIR else str(target.path)
        return {"spec": spec, "sha256": self._digest(target.path)}

    def _digest(self, path: Path) -> str:
        if path not in self._digests:
            self._digests[path] = data_digest(path)
        return self._digests[path]

    def encode(self, value: Any, where: str) -> Any:
        """A deterministic JSON form of `value` (see the module docstring); `where` names it in messages."""
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, Path):
            return {_PATH: str(value), "sha256": self._digest(value) if value.exists() else None}
        if isinstance(value, np.ndarray):
            return {_ARRAY: self.store.put_array(value), "dtype": str(value.dtype), "shape": list(value.shape)}
        if isinstance(value, (list, tuple)):
            return [self.encode(v, f"{where}[{k}]") for k, v in enumerate(value)]
        if isinstance(value, dict) and all(isinstance(k, str) and not k.startswith("$") for k in value):
            return {k: self.encode(value[k], f"{where}.{k}") for k in sorted(value)}
        return {_UNRECORDED: f"{type(value).__module__}.{type(value).__qualname__}", "at": where}


def replay_context(
    rep: Reproducer | None,
    store: ConstantStore,
    *,
    passes: list[Pass],
    console: Console,
    target: str | None = None,
    data: dict[str, Path] | None = None,
    output_dir: Path | None = None,
) -> PassContext:
    """The PassContext a dump was made with, for running `passes` on it.

    `target` overrides the recorded target; `data` gives new locations of recorded data sources (option
    name -> path). A data source whose content differs from the recorded digest is refused
    (StretchError "replay-mismatch"); one that is missing gives a warning (the passes that read it will say
    so). Without a reproducer, the context is the compile defaults (target pixel6, no options).
    """
    from stretchc.targets import load_target

    data = dict(data or {})
    if rep is None:
        return PassContext(target=load_target(target or "pixel6"), output_dir=output_dir, options={"pipeline": print_pipeline(passes)}, console=console)
    if rep.version != __version__:
        console.warn("replay-version", f"the dump was written by stretchc {rep.version}; this is stretchc {__version__}: results may differ")
    unknown = sorted(set(data) - {k for k, v in rep.options.items() if isinstance(v, dict) and _PATH in v})
    if unknown:
        raise StretchError("usage", f"--data {unknown[0]}: the dump records no data source of that name")
    decoder = _Decoder(store, console, data)
    if target is not None:
        tgt = load_target(target)
    elif rep.target is not None:
        tgt = load_target(rep.target["spec"])
        decoder.check(tgt.path, rep.target["sha256"], "the target")
    else:
        tgt = None
    options = {k: decoder.decode(v, k) for k, v in rep.options.items()}
    options["pipeline"] = ",".join(p for p in (rep.done, print_pipeline(passes)) if p)
    report: dict[str, Any] = {}
    if rep.analyses is not None:
        report = decoder.decode(json.loads(store.get(rep.analyses, ".json")), "analyses")
    return PassContext(target=tgt, place=dict(rep.place), output_dir=output_dir, options=options, console=console, report=report)


class _Decoder:
    """The inverse of `Recorder.encode`, checking data sources against their recorded digests."""

    def __init__(self, store: ConstantStore, console: Console, data: dict[str, Path]) -> None:
        self.store, self.console, self.data = store, console, data

    def check(self, path: Path, recorded: str | None, what: str) -> None:
        if recorded is None:
            return
        if not path.exists():
            self.console.warn("replay-data-missing", f"{what}: {path} is not there (its digest was {recorded[:16]}); the passes that read it will fail")
            return
        found = data_digest(path)
        if found != recorded:
            raise StretchError(
                "replay-mismatch",
                f"{what}: content differs from the dump's (sha256 {found[:16]} here, {recorded[:16]} recorded); give the original data",
                file=str(path),
            )

    def decode(self, value: Any, where: str) -> Any:
        if isinstance(value, list):
            return [self.decode(v, f"{where}[{k}]") for k, v in enumerate(value)]
        if not isinstance(value, dict):
            return value
        if _PATH in value:
            path = self.data.get(where, Path(value[_PATH]))
            self.check(path, value["sha256"], f"option {where}")
            return path
        if _ARRAY in value:
            return self.store.get_array(value[_ARRAY], value["dtype"], tuple(value["shape"]))
        if _UNRECORDED in value:
            self.console.warn("replay-unrecorded", f"{where}: a {value[_UNRECORDED]} that dumps cannot record; replaying without it")
            return None
        return {k: self.decode(v, f"{where}.{k}") for k, v in value.items()}
