"""`mixpe-sim sweep FILE`: expand the points, skip the finished ones, run the rest, store every row."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mixpe_sim import __version__
from mixpe_sim.report.files import csv_text
from mixpe_sim.report.output import write_atomic
from mixpe_sim.sweeps.execute import execute
from mixpe_sim.sweeps.spec import Point, expand, load_sweep
from mixpe_sim.sweeps.store import ResultStore, finished_hashes, latest_by_hash

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
    text = path.read_text()
    store = ResultStore(out_dir)
    # equal points (same job) run once; their row is labelled with every point number
    groups: dict[str, list[Point]] = {}
    for point in points:
        groups.setdefault(point.config_hash, []).append(point)
    done = finished_hashes(store.path)
    todo = [members[0] for config_hash, members in groups.items() if config_hash not in done]
    report = progress or (lambda *_: None)
    failed = ran = 0
    report(len(groups) - len(todo), 0, len(todo), len(groups))
    by_index = {point.index: point for point in todo}
    results = execute([(p.index, p.job) for p in todo], workers, scheduler)
    try:
        for index, outcome in results:
            if ran == 0:  # written with the first result, so a sweep that never started leaves nothing
                write_atomic(out_dir / "sweep.yaml", text)
            point = by_index[index]
            store.append({"point": point.index, "points": [p.index for p in groups[point.config_hash]],
                          "config_hash": point.config_hash, "values": point.values, "job": point.job,
                          "version": __version__, **outcome})
            ran += 1
            failed += outcome["status"] != "ok"
            report(len(groups) - len(todo) + ran, failed, len(todo) - ran, len(groups))
    except KeyboardInterrupt:
        results.close()  # stops the workers now (the pool terminates), not after the queued points
        _write_summary(store.path, points, out_dir)
        raise SweepInterrupted(f"{ran} of {len(todo)} points finished and are kept in {store.path}; "
                               f"rerun the same command to run the other {len(todo) - ran}") from None
    finally:
        results.close()
    rows = _write_summary(store.path, points, out_dir)
    return SweepOutcome(points, rows, len(todo), len(groups) - len(todo))


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C, SIGTERM or SIGHUP during a sweep; the message says what is kept and how to resume."""


def _write_summary(path: Path, points: list[Point], out_dir: Path) -> list[dict[str, Any]]:
    rows = latest_rows(path, points)
    write_atomic(out_dir / SUMMARY_FILE, csv_text(summary_records(rows)))
    return rows


def latest_rows(path: Path, points: list[Point]) -> list[dict[str, Any]]:
    """The latest row of every distinct point, in point order, labelled with this sweep's point numbers."""
    latest = latest_by_hash(path)
    numbers: dict[str, list[int]] = {}
    for point in points:
        numbers.setdefault(point.config_hash, []).append(point.index)
    return [{**latest[h], "point": indices[0], "points": indices} for h, indices in numbers.items() if h in latest]


def summary_records(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Flat records for summary.csv: point, status, the swept values, the metrics, the error."""
    metric_keys = sorted({key for row in rows for key in row.get("metrics", {})})
    value_keys = list(dict.fromkeys(key for row in rows for key in row["values"]))
    return [{"point": " ".join(map(str, row.get("points", [row["point"]]))),
             "status": row["status"], **{k: row["values"].get(k) for k in value_keys},
             **{k: row.get("metrics", {}).get(k) for k in metric_keys}, "error": row.get("error", ""),
             "config_hash": row["config_hash"]} for row in rows]
