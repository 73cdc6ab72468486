"""Sweeps and signals, with real signals sent to a real `mixpe-sim sweep --workers 2` process (issue 17):
Ctrl-C / SIGTERM stop it within seconds keeping finished points; SIGKILL leaves no orphaned workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mixpe_sim.sweeps.store import RESULTS_FILE, read_rows
from tests.conftest import REPO

# 24 distinct points, batch 1..24: about 10 s of work on one core, far longer than a stop may take
SLOW_SWEEP = f"""
command: run
base: {{model: {REPO / 'tests/data/tiny-llama.json'}, prompt: 64, gen: 16, exact: true}}
grid:
  batch: [{', '.join(str(b) for b in range(1, 25))}]
"""
STOP_WITHIN_S = 5.0


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited


def _start(tmp_path: Path) -> tuple[subprocess.Popen[str], Path, list[int]]:
    spec = tmp_path / "slow.yaml"
    spec.write_text(SLOW_SWEEP)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "mixpe_sim", "sweep", str(spec), "--workers", "2", "--out",
                             str(out)], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 120
    while not list(read_rows(out / RESULTS_FILE)):  # wait for the first finished point
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no point finished in 120 s"
        time.sleep(0.1)
    workers = _children(proc.pid)
    assert len(workers) >= 2
    return proc, out, workers


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_stops_a_pool_sweep_quickly_and_keeps_finished_points(tmp_path: Path, signum: int) -> None:
    proc, out, workers = _start(tmp_path)
    proc.send_signal(signum)
    sent = time.monotonic()
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - sent < STOP_WITHIN_S
    assert proc.returncode == 130, err
    assert "rerun the same command" in err and len(err.strip().splitlines()) == 1, err
    assert not [pid for pid in workers if _alive(pid)]
    kept = list(read_rows(out / RESULTS_FILE))
    assert 1 <= len(kept) < 24 and all(row["status"] == "ok" for row in kept)
    assert (out / "summary.csv").read_text().count("\n") == len(kept) + 1


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_sigkill_of_a_pool_sweep_leaves_no_workers(tmp_path: Path) -> None:
    proc, _, workers = _start(tmp_path)
    proc.kill()
    proc.communicate(timeout=30)
    deadline = time.monotonic() + STOP_WITHIN_S
    while [pid for pid in workers if _alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if _alive(pid)]
