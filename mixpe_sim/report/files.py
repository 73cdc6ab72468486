"""`--out DIR`: result.json plus CSV tables, each written atomically."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from mixpe_sim.report.output import to_json, write_atomic


def csv_text(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_run_outputs(out_dir: Path, result: dict[str, Any]) -> list[Path]:
    """Write result.json and the CSV tables a run produced; returns the files written."""
    files = {"result.json": to_json(result) + "\n"}
    if "per_op" in result:
        files["per_op.csv"] = csv_text(result["per_op"])
    if "decode_steps" in result:
        files["decode_steps.csv"] = csv_text(result["decode_steps"])
    layers = result.get("per_layer", {}).get("prefill_s") or result.get("per_layer_s")
    if layers:
        files["per_layer.csv"] = csv_text([{"layer": i, "time_s": t} for i, t in enumerate(layers)])
    written = []
    for name, text in files.items():
        path = out_dir / name
        write_atomic(path, text)
        written.append(path)
    return written
