"""`--out DIR`: result.json plus CSV tables, each written atomically."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from mixpe_sim.errors import MixpeError
from mixpe_sim.report.output import to_json, write_atomic


class NonFiniteResult(MixpeError):
    """A result holds NaN or infinity: some input made the model's arithmetic overflow."""


def ensure_finite(result: Any, path: str = "") -> None:
    """Raise one line naming the first result key that is NaN or infinite (the last guard before output)."""
    if isinstance(result, float) and not math.isfinite(result):
        raise NonFiniteResult(f"result {path or 'value'} is {result}: an input value is too large or too small "
                              "for the model's arithmetic (check energy and timing values)")
    if isinstance(result, dict):
        for key, value in result.items():
            ensure_finite(value, f"{path}.{key}" if path else str(key))
    elif isinstance(result, list | tuple):
        for index, value in enumerate(result):
            ensure_finite(value, f"{path}[{index}]")


def check_writable_dir(path: Path) -> Path:
    """`path` is, or can become, a directory we may write into: proven by making (and removing) a scratch
    directory in the deepest part that exists. Raises OSError (or ValueError) otherwise."""
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(0, "exists and is not a directory")
    existing = next(p for p in (path.absolute(), *path.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise OSError(0, f"'{existing}' is not a directory")  # a file where a parent directory should be
    if len(path.absolute().name.encode()) > os.pathconf(existing, "PC_NAME_MAX"):
        raise OSError(0, "File name too long")
    scratch = tempfile.mkdtemp(prefix=".mixpe-check.", dir=existing)
    shutil.rmtree(scratch, ignore_errors=True)
    return path


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
    ensure_finite(result)
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


# ---------------------------------------------------------------- one command per --out directory

MANIFEST_FILE = "manifest.json"
# Every file a run/step/compare may write into --out (results, CSV tables, trace, plots).
OUTPUT_FILES = ("result.json", "per_op.csv", "decode_steps.csv", "per_layer.csv", "trace.json", "timeline.csv",
                "bandwidth.png", "occupancy.png", "stalls_per_op.png", "roofline.png", "compare.png",
                "requests.csv", "load.csv", "serve_timeline.png", "latency_vs_load.png")


def _read_manifest(out_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((out_dir / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def claim_output_dir(out_dir: Path, command: str) -> None:
    """Before simulating: refuse a directory holding another command's outputs, remove our own stale temp
    files (left by a killed run), and record that `command` is writing here."""
    previous = _read_manifest(out_dir)
    other = previous.get("command")
    if other and other != command:
        files = ", ".join(previous.get("files", [])) or "no files yet"
        raise MixpeError(f"--out {out_dir}: holds the outputs of `{other}` ({files}); use another directory "
                         "or delete them (one command per output directory)")
    if out_dir.is_dir():
        for name in (*OUTPUT_FILES, MANIFEST_FILE):
            for stale in out_dir.glob(f".{name}.*.tmp"):
                stale.unlink(missing_ok=True)
    write_atomic(out_dir / MANIFEST_FILE, to_json({"command": command, "state": "running",
                                                   "started_ns": time.time_ns(),
                                                   "files": previous.get("files", [])}) + "\n")


def finish_output_dir(out_dir: Path, result: dict[str, Any]) -> None:
    """After writing: remove this command's outputs the run did not rewrite (stale), then list what it wrote,
    with a hash of the configuration that produced them."""
    manifest = _read_manifest(out_dir)
    started = int(manifest.get("started_ns", 0))
    written = []
    for name in OUTPUT_FILES:
        path = out_dir / name
        if path.exists():
            if path.stat().st_mtime_ns >= started:
                written.append(name)
            elif name in manifest.get("files", []) or not manifest:
                path.unlink()  # ours, from an earlier run of this command: stale
    write_atomic(out_dir / MANIFEST_FILE, to_json({
        "command": manifest.get("command", "unknown"), "state": "complete", "started_ns": started,
        "config_sha256": config_sha256(result.get("config", {})),
        "version": result.get("version", ""),
        "files": written}) + "\n")


def config_sha256(config: Any) -> str:
    """A hash of a configuration (a config object or its JSON form), as manifests and traces name it."""
    data = config.model_dump(mode="json") if hasattr(config, "model_dump") else config
    return hashlib.sha256(to_json(data).encode()).hexdigest()


def check_plot_inputs(out_dir: Path) -> None:
    """`plot DIR` draws one command's outputs: refuse a directory whose manifest says a run is incomplete,
    or that holds result files the manifest does not list (left by another command or an older version)."""
    manifest = _read_manifest(out_dir)
    if not manifest:
        return  # a sweep directory or one written before manifests: plots check their own inputs
    if manifest.get("state") != "complete":
        raise MixpeError(f"{out_dir}: the `{manifest.get('command')}` that writes here has not finished "
                         "(manifest.json state: running); rerun it")
    listed = set(manifest.get("files", []))
    foreign = [name for name in OUTPUT_FILES if name.endswith((".json", ".csv")) and (out_dir / name).exists()
               and name not in listed]
    if foreign:
        raise MixpeError(f"{out_dir}: {', '.join(foreign)} not written by the `{manifest.get('command')}` "
                         "recorded in manifest.json; refusing to plot mixed outputs")
