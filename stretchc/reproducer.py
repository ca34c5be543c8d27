"""Reproducers: what a dump records besides the module so that `stretchc opt` can replay it exactly.

A dump carries one `reproducer {json}` line (sorted keys, no whitespace) with:
- `version`: the stretchc that wrote it;
- `done` / `remaining`: the passes run so far and the rest of the pipeline, spelled in full;
- `target`: the target as given (`spec`, a phone name or a YAML path) and the SHA-256 of its file;
- `place`: the --place overrides;
- `source_sha256`: the digest of the ONNX file the compile started from (None when it did not);
- `settings`: the compile settings (`stretchc.compile_settings.CompileSettings`, field by field), encoded by `encode`:
  JSON values as they are, numpy arrays by digest in the dump's constant store, `Path`s (data read from disk:
  calibration sets, ...) as the path and the SHA-256 of its content;
- `analyses`: digest of the analyses recorded so far (`stretchc.analyses`: the facts earlier passes recorded
  for later ones, by key, field by field), stored in the constant store as JSON, encoded the same way;
- `failure`: for the dump of a failed pass, the pass and its error.

`influences(ctx)` is the one place that says what influences passes; `Recorder` encodes it, `replay_context`
turns a reproducer back into a PassContext (the pipeline: `done` + the passes to run), taking data sources
again and checking their digests.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

import stretchc.passes  # noqa: F401  (registers the built-in passes, which a dump's pipeline names)
from stretchc.compile_settings import CompileSettings
from stretchc.console import Console
from stretchc.depfile import expand
from stretchc.errors import StretchError
from stretchc.irtext import ConstantStore
from stretchc.analyses import Analyses, Analysis
from stretchc.analyses import from_record as analysis_from_record
from stretchc.passmanager import Pass, PassContext, parse_pipeline, print_pipeline
from stretchc.targets import DATA_DIR, load_target
from stretchc.version import __version__

LINE_KIND = "reproducer"
_PATH, _ARRAY, _UNRECORDED = "$path", "$array", "$unrecorded"


def influences(ctx: PassContext) -> dict[str, Any]:
    """Everything besides the module and the pipeline that passes read: target, placement overrides, the compile
    settings and the analyses earlier passes recorded."""
    return {
        "target": ctx.target,
        "place": dict(ctx.place),
        "source_sha256": ctx.source_sha256,
        "settings": ctx.settings.to_record(),
        "analyses": {a.key: a.to_record() for a in ctx.analyses},
    }


def data_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, or of a folder's files (sorted relative paths and their digests)."""
    if path.is_dir():
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
    source_sha256: str | None
    settings: dict[str, Any]
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
            source_sha256=found["source_sha256"],
            settings=self.encode(found["settings"], "settings"),
            analyses=analyses,
        )

    def _target(self, target: Any) -> dict[str, str] | None:
        if target is None:
            return None
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

    `target` overrides the recorded target; `data` gives new locations of recorded data sources (setting
    name -> path). A data source whose content differs from the recorded digest is refused
    (StretchError "replay-mismatch"); one that is missing gives a warning (the passes that read it will say
    so). Without a reproducer, the context is the compile defaults (target pixel6, default settings).
    """
    data = dict(data or {})
    if rep is None:
        return PassContext(target=load_target(target or "pixel6"), output_dir=output_dir, pipeline=list(passes), console=console)
    if rep.version != __version__:
        console.warn("replay-version", f"the dump was written by stretchc {rep.version}; this is stretchc {__version__}: results may differ")
    unknown = sorted(set(data) - {k for k, v in rep.settings.items() if isinstance(v, dict) and _PATH in v})
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
    try:
        settings = CompileSettings.from_record({k: decoder.decode(v, k) for k, v in rep.settings.items()})
        recorded: list[Analysis] = []
        if rep.analyses is not None:
            doc = decoder.decode(json.loads(store.get(rep.analyses, ".json")), "analyses")
            recorded = [analysis_from_record(key, fields) for key, fields in sorted(doc.items())]
    except (KeyError, TypeError, ValueError) as exc:
        raise StretchError("bad-ir", f"the dump's reproducer records settings or analyses this stretchc does not know ({exc})") from None
    done = parse_pipeline(rep.done) if rep.done else []
    return PassContext(
        target=tgt, place=dict(rep.place), output_dir=output_dir, settings=settings, pipeline=[*done, *passes], console=console,
        source_sha256=rep.source_sha256, analyses=Analyses(recorded),
    )


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
