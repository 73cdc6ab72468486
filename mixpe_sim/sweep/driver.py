"""`mixpe-sim sweep FILE`: expand the points, skip the finished ones, run the rest, store every row."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mixpe_sim import __version__
from mixpe_sim.report.files import csv_text
from mixpe_sim.report.output import write_atomic
from mixpe_sim.sweep.execute import execute
from mixpe_sim.sweep.spec import Point, expand, load_sweep
from mixpe_sim.sweep.store import ResultStore, finished_hashes, latest_by_hash

SUMMARY_FILE = "summary.csv"
Progress = Callable[[int, int, int, int], None]  # finished, failed, remaining, total


@dataclass(frozen=True)
class SweepOutcome:
    points: list[Point]
    rows: list[dict[str, Any]]  # the latest row of every point, in point order
    ran: int
    skipped: int


def run_sweep(path: Path, out_dir: Path, workers: int = 1, scheduler: str | None = None,
              progress: Progress | None = None) -> SweepOutcome:
    spec = load_sweep(path)
    points = expand(spec)
    store = ResultStore(out_dir)
    write_atomic(out_dir / "sweep.yaml", path.read_text())
    done = finished_hashes(store.path)
    todo = [point for point in points if point.config_hash not in done]
    report = progress or (lambda *_: None)
    failed = 0
    report(len(points) - len(todo), 0, len(todo), len(points))
    by_index = {point.index: point for point in todo}
    results = execute([(p.index, p.job) for p in todo], workers, scheduler)
    for finished, (index, outcome) in enumerate(results, 1):
        point = by_index[index]
        store.append({"point": point.index, "config_hash": point.config_hash, "values": point.values,
                      "job": point.job, "version": __version__, **outcome})
        failed += outcome["status"] != "ok"
        report(len(points) - len(todo) + finished, failed, len(todo) - finished, len(points))
    rows = latest_rows(store.path, points)
    write_atomic(out_dir / SUMMARY_FILE, csv_text(summary_records(rows)))
    return SweepOutcome(points, rows, len(todo), len(points) - len(todo))


def latest_rows(path: Path, points: list[Point]) -> list[dict[str, Any]]:
    latest = latest_by_hash(path)
    return [latest[p.config_hash] for p in points if p.config_hash in latest]


def summary_records(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Flat records for summary.csv: point, status, the swept values, the metrics, the error."""
    metric_keys = sorted({key for row in rows for key in row.get("metrics", {})})
    value_keys = list(dict.fromkeys(key for row in rows for key in row["values"]))
    return [{"point": row["point"], "status": row["status"], **{k: row["values"].get(k) for k in value_keys},
             **{k: row.get("metrics", {}).get(k) for k in metric_keys}, "error": row.get("error", ""),
             "config_hash": row["config_hash"]} for row in rows]
