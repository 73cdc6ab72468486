"""Sweeps: the same rows whatever runs them, nothing lost when killed, failures recorded, bad files refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mixpe_sim.cli import main
from mixpe_sim.sweeps.driver import run_sweep
from mixpe_sim.sweeps.spec import SweepSpec, expand
from mixpe_sim.sweeps.store import RESULTS_FILE, read_rows
from tests.conftest import REPO

TWELVE_POINTS = """
command: gemm
base: {m: 64}
grid:
  array.rows: [16, 32]
  memory: [flat, ddr4-3200, ideal]
zip:
  n: [512, 1024]
  k: [512, 1024]
"""


def write_sweep(tmp_path: Path, text: str, name: str = "sweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def comparable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Everything but the wall time, which is the only thing allowed to differ between runs."""
    return [{k: v for k, v in row.items() if k != "wall_s"} for row in rows]


def test_twelve_points_give_the_same_rows_with_1_and_2_workers_and_dask(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    path = write_sweep(tmp_path, TWELVE_POINTS)
    one = run_sweep(path, tmp_path / "one", workers=1)
    two = run_sweep(path, tmp_path / "two", workers=2)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        dask = run_sweep(path, tmp_path / "dask", scheduler=cluster.scheduler_address)
    assert len(one.rows) == 12 and all(row["status"] == "ok" for row in one.rows)
    assert comparable(one.rows) == comparable(two.rows) == comparable(dask.rows)
    assert [row["point"] for row in one.rows] == list(range(12))
    summaries = {name: (tmp_path / name / "summary.csv").read_text() for name in ("one", "two", "dask")}
    assert len(set(summaries.values())) == 1  # and the summary files are byte-identical


def test_a_rerun_skips_finished_points(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, TWELVE_POINTS)
    first = run_sweep(path, tmp_path / "out")
    again = run_sweep(path, tmp_path / "out")
    assert (first.ran, first.skipped) == (12, 0) and (again.ran, again.skipped) == (0, 12)
    assert len(list(read_rows(tmp_path / "out" / RESULTS_FILE))) == 12


SLOW_POINTS = """
command: gemm
base: {m: 4096, n: 4096, k: 4096}  # about 0.1 s a point: slow enough to kill mid-way
grid:
  array.rows: [8, 16, 24, 32]
  array.cols: [16, 32]
"""


def test_a_killed_sweep_loses_nothing_and_the_rerun_runs_only_the_rest(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, SLOW_POINTS)
    out = tmp_path / "out"
    results = out / RESULTS_FILE
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    sweep = subprocess.Popen([sys.executable, "-m", "mixpe_sim", "sweep", str(path), "--out", str(out)],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not results.exists() or len(results.read_text().splitlines()) < 2):
        time.sleep(0.02)
    sweep.send_signal(signal.SIGKILL)
    sweep.wait()
    before = list(read_rows(results))
    assert 2 <= len(before) < 8, "the sweep should have been killed mid-way"
    with results.open("a") as handle:  # what a kill during a write leaves behind
        handle.write('{"point": 7, "config_hash": "torn')
    rerun = run_sweep(path, out)
    assert rerun.skipped == len(before) and rerun.ran == 8 - len(before)
    assert sorted(row["point"] for row in rerun.rows) == list(range(8))
    assert {row["config_hash"] for row in before} <= {row["config_hash"] for row in rerun.rows}


def test_an_invalid_point_is_recorded_and_the_rest_finish(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_sweep(tmp_path, """
command: step
base: {model: tests/data/tiny-llama.json, phase: decode, context: 128}
grid:
  quant.group_size: [64, 100, 128]
  batch: [1, 0]
""".replace("tests/data", str(REPO / "tests" / "data")))
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 1
    rows = {(r["values"]["quant.group_size"], r["values"]["batch"]): r
            for r in read_rows(tmp_path / "out" / RESULTS_FILE)}
    assert len(rows) == 6
    assert rows[(64, 1)]["status"] == rows[(128, 1)]["status"] == "ok"
    assert rows[(100, 1)]["status"] == "failed" and "group size 100 does not divide" in rows[(100, 1)]["error"]
    assert rows[(64, 0)]["status"] == "failed" and "batch" in rows[(64, 0)]["error"]
    printed = capsys.readouterr().out
    assert "2 ok, 4 failed" in printed and "group size 100" in printed


@pytest.mark.parametrize(("text", "expected"), [
    ("command: gemm\nbase: {m: 1, n: 1, k: 128}\ngrdi: {m: [1]}\n", "grdi: unknown key; allowed: name, command"),
    ("command: gemm\nbase: {m: 1, n: 1, k: 128}\ngrid: {prompt: [1]}\n", "grid.prompt: not an option of 'gemm'"),
    ("command: gemm\nbase: {m: 1}\nzip: {n: [1, 2], k: [128]}\n", "zip.0: lists advance together"),
    ("command: gemm\nbase: {m: 1}\ngrid: {n: []}\n", "grid.n: needs at least one value"),
    ("command: gemm\nbase: {m: 1}\n", "base: 'gemm' needs n, k"),
    ("command: train\n", "command: Input should be 'run', 'step' or 'gemm'"),
])
def test_bad_sweep_files_are_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             text: str, expected: str) -> None:
    path = write_sweep(tmp_path, text)
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"{path}: {expected}" in err
    assert not (tmp_path / "out" / RESULTS_FILE).exists()


def test_point_identity_ignores_axis_order() -> None:
    a = expand(SweepSpec(command="gemm", base={"m": 1}, grid={"n": [1, 2], "k": [128, 256]}))
    b = expand(SweepSpec(command="gemm", base={"m": 1}, grid={"k": [128, 256], "n": [1, 2]}))
    assert {p.config_hash for p in a} == {p.config_hash for p in b}
    assert len({p.config_hash for p in a}) == 4


def test_sweep_directory_plots_a_pareto_front(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, TWELVE_POINTS)
    run_sweep(path, tmp_path / "out")
    assert main(["plot", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "pareto.png").stat().st_size > 0


def test_docs_sweep_example_expands(tmp_path: Path) -> None:
    import re

    text = (REPO / "docs" / "sweeps.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", text, re.S)
    assert block
    from mixpe_sim.sweeps.spec import load_sweep

    spec = load_sweep(write_sweep(tmp_path, block.group(1)))
    points = expand(spec)
    assert len(points) == 24 and len({p.config_hash for p in points}) == 24
    assert json.dumps(points[0].job)  # plain data, ready to ship to a worker


def test_equal_points_run_once_and_carry_every_point_number(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    # array.rows 16 written twice (as 16 and as the base value): three points, two distinct jobs
    path = write_sweep(tmp_path, "command: gemm\nbase: {m: 64, n: 512, k: 512, set: {array.rows: 16}}\n"
                                 "grid: {array.rows: [16, 16, 32]}\n")
    outcome = run_sweep(path, tmp_path / "out")
    assert outcome.ran == 2 and len(list(read_rows(tmp_path / "out" / RESULTS_FILE))) == 2
    assert [row["points"] for row in outcome.rows] == [[0, 1], [2]]
    summary = (tmp_path / "out" / "summary.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in summary[1:]] == ["0 1", "2"]
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 0
    assert "3 points (2 distinct" in capsys.readouterr().out


def test_error_rows_are_final_and_not_reappended(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, "command: gemm\nbase: {m: 64, n: 512, k: 512}\ngrid: {array.rows: [16, 32]}\n")
    first = run_sweep(path, tmp_path / "out")
    store = tmp_path / "out" / RESULTS_FILE
    rows = [json.loads(line) for line in store.read_text().splitlines()]
    rows[0].update(status="error", error="RuntimeError: engine bug (x.py:1)")
    rows[0].pop("metrics")
    store.write_text("".join(json.dumps(row) + "\n" for row in rows))
    again = run_sweep(path, tmp_path / "out")
    assert first.ran == 2 and again.ran == 0
    assert len(store.read_text().splitlines()) == 2
    assert [row["status"] for row in again.rows] == ["error", "ok"]


@pytest.mark.parametrize(("text", "expected"), [
    ("command: gemm\nbase: {m: 1, n: 128, k: 128, set: [array.rows, 16]}\n", "base.set: must be a mapping"),
    ("command: gemm\nbase: {m: 1, n: 128, k: 128, set: array.rows=16}\n", "base.set: must be a mapping"),
    ("command: gemm\nbase: {m: 1, n: 128, k: 128}\ngrid: {memory.latency_ns: [.nan]}\n", "not a finite number"),
    ("command: gemm\nbase: {m: 1, n: 128, k: 128}\ngrid: {memory.name: [2024-01-01]}\n", "quote dates"),
    ("command: gemm\nbase: {m: 1, n: 128, k: 128}\ngrid: {set: [{array.rows: 16}, 3]}\n", "grid.set: must be"),
])
def test_unusable_sweep_values_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            text: str, expected: str) -> None:
    path = write_sweep(tmp_path, text)
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and expected in err and "Traceback" not in err


def test_foreign_rows_are_ignored_by_sweep_and_plot_alike(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, "command: gemm\nbase: {m: 64, n: 512, k: 512}\ngrid: {array.rows: [16, 32]}\n")
    out = tmp_path / "out"
    run_sweep(path, out)
    with (out / RESULTS_FILE).open("a") as handle:  # rows another tool (or an old version) appended
        handle.write('{"config_hash": "abc", "status": "ok"}\n{"config_hash": "def", "point": 9}\n[1, 2]\n')
    assert len(list(read_rows(out / RESULTS_FILE))) == 2
    assert run_sweep(path, out).ran == 0
    pytest.importorskip("matplotlib")
    assert main(["plot", str(out)]) == 0
