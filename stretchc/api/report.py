"""A bundle's placement report as typed values (`Bundle.report`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping




@dataclass(frozen=True)
class PartitionInfo:
    """One partition of a bundle: the regions it runs, where, at what precision, its predicted time (ms) and `why`
    its regions share it (what splitting it, or merging it with another, is predicted to cost)."""

    name: str
    processor: str
    precision: str
    regions: tuple[str, ...]
    predicted_ms: float
    why: str


@dataclass(frozen=True)
class Alternative:
    """A processor and precision a region may take, priced: the region's own predicted time there (`region_ms`) and
    the whole model's with the region there and every other region as placed (`total_ms`)."""

    processor: str
    precision: str
    region_ms: float
    total_ms: float


@dataclass(frozen=True)
class RegionInfo:
    """One region (`stem`, `s1.b0`, `s1.join`, `head`, `main`, ...): where it runs and at what precision, why
    (`why`, `precision_why`; `override`: `place=` put it there; `limit`: the target limit that moved it, if one did),
    its predicted time (ms) and ops, every processor and precision it was priced at (`alternatives`, the chosen one
    among them) and, by processor, why it may not run on the others (`ineligible`)."""

    name: str
    kind: str
    processor: str
    precision: str
    predicted_ms: float
    ops: int
    why: str
    precision_why: str
    override: bool
    limit: str | None
    alternatives: tuple[Alternative, ...]
    ineligible: Mapping[str, str]

    @classmethod
    def from_record(cls, r: Mapping[str, Any]) -> RegionInfo:
        """The region of one entry of a placement report's `regions`."""
        alts = r["alternatives"]
        return cls(
            name=r["region"], kind=r["kind"], processor=r["processor"], precision=r["precision"], predicted_ms=float(r["predicted_ms"]),
            ops=int(r["ops"]), why=r["why"], precision_why=r["precision_why"], override=bool(r["override"]), limit=r["limit"],
            alternatives=tuple(
                Alternative(p, q, float(t["region_ms"]), float(t["total_ms"])) for p, a in alts.items() for q, t in a.get("precisions", {}).items()
            ),
            ineligible={p: a["reason"] for p, a in alts.items() if not a["eligible"]},
        )


@dataclass(frozen=True)
class TimelineEntry:
    """One partition in the predicted timeline of a run: where it runs, its regions, and when it starts and ends
    (ms from the start of the run)."""

    partition: str
    processor: str
    precision: str
    regions: tuple[str, ...]
    start_ms: float
    end_ms: float


@dataclass(frozen=True)
class Report:
    """A bundle's placement report: the predicted latency (ms), the fastest single processor running the whole
    model as one partition and the predicted speedup over it, the partitions, the regions (with their alternatives)
    and the predicted timeline; `data` holds the whole report as `--report r.json` writes it (edges, limits, the
    accuracy guard's rejections and measurements, the cost model's evidence)."""

    target: str
    predicted_latency_ms: float
    best_single: tuple[str, float] | None  # (processor, ms)
    speedup_over_best_single: float | None
    partitions: tuple[PartitionInfo, ...]
    regions: tuple[RegionInfo, ...]
    timeline: tuple[TimelineEntry, ...]
    data: Mapping[str, Any]

    @property
    def processors(self) -> tuple[str, ...]:
        """The processors the partitions run on, sorted."""
        return tuple(sorted({p.processor for p in self.partitions}))

    @property
    def placement(self) -> dict[str, str]:
        """Region -> the processor it runs on."""
        return {r.name: r.processor for r in self.regions}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Report:
        """The report of a placement report's JSON record (costmodel/placement.py writes it)."""
        best = record["best_single"]
        return cls(
            target=record["target"],
            predicted_latency_ms=float(record["predicted_latency_ms"]),
            best_single=(best["processor"], float(best["ms"])) if best else None,
            speedup_over_best_single=record["speedup_over_best_single"],
            partitions=tuple(
                PartitionInfo(p["name"], p["processor"], p["precision"], tuple(p["regions"]), float(p["predicted_ms"]), p["why"])
                for p in record["partitions"]
            ),
            regions=tuple(RegionInfo.from_record(r) for r in record["regions"]),
            timeline=tuple(
                TimelineEntry(t["partition"], t["processor"], t["precision"], tuple(t["regions"]), float(t["start_ms"]), float(t["end_ms"]))
                for t in record["timeline"]
            ),
            data=record,
        )
