"""The results store of a sweep: DIR/results.jsonl, one JSON row per finished point, append-only.

Each row is written with one write() and fsync'd before the next point is reported, so a killed sweep
loses at most the point being written; a torn last line is ignored on reading and rerun.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RESULTS_FILE = "results.jsonl"
# Every status is final: a rerun skips the point. "error" (an unexpected exception, an engine bug) would
# fail again on the same version, and the config hash includes the version, so a fixed release reruns it.
FINAL_STATUSES = ("ok", "failed", "error")


def read_rows(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with path.open() as handle:
        for line in handle:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # torn line of a killed sweep: that point runs again
            if is_result_row(row):
                yield row
            # anything else is a torn line or not ours: skipped by sweep and plot alike


def is_result_row(row: Any) -> bool:
    """A row this module wrote: the fields the summary, the table and the plot read."""
    if not isinstance(row, dict) or not isinstance(row.get("config_hash"), str):
        return False
    if row.get("status") not in FINAL_STATUSES or not isinstance(row.get("point"), int):
        return False
    if not isinstance(row.get("values"), dict):
        return False
    metrics = row.get("metrics")
    return row["status"] != "ok" or (isinstance(metrics, dict) and isinstance(metrics.get("latency_s"), float | int)
                                     and isinstance(metrics.get("energy_j"), float | int))


def latest_by_hash(path: Path) -> dict[str, dict[str, Any]]:
    """The last row of each point: a retried point's newer row replaces its `error` row."""
    return {row["config_hash"]: row for row in read_rows(path)}


def finished_hashes(path: Path) -> set[str]:
    return {row["config_hash"] for row in read_rows(path) if row.get("status") in FINAL_STATUSES}


def _ends_mid_line(path: Path) -> bool:
    if not path.exists() or path.stat().st_size == 0:
        return False
    with path.open("rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) != b"\n"


class ResultStore:
    def __init__(self, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.path = out_dir / RESULTS_FILE
        self._needs_newline = _ends_mid_line(self.path)

    def append(self, row: dict[str, Any]) -> None:
        text = json.dumps(row, sort_keys=True, allow_nan=False) + "\n"
        if self._needs_newline:  # close a torn line so this row starts on its own
            text = "\n" + text
            self._needs_newline = False
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, text.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
