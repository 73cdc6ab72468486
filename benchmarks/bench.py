"""Simulator speed against the targets in docs/performance.md. Not a test: run it by hand.

    python benchmarks/bench.py            # the targets
    python benchmarks/bench.py --exact    # also the full-simulation run, to measure default-mode error

Prints wall time and events/s for each case next to the raw SimPy timeout rate on this machine.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import simpy

from mixpe_sim.config import load_hardware
from mixpe_sim.runs.gemm import run_gemm
from mixpe_sim.runs.llm import Workload, run_request, run_step
from mixpe_sim.trace.recording import TraceRecording
from mixpe_sim.workload.models import load_model


def raw_simpy_timeouts_per_s(count: int = 300_000) -> float:
    """One process yielding plain timeouts: the ceiling for any SimPy model on this machine."""
    env = simpy.Environment()

    def ticker(env: simpy.Environment):  # type: ignore[no-untyped-def]
        for _ in range(count):
            yield env.timeout(1)

    env.process(ticker(env))
    start = time.perf_counter()
    env.run()
    return count / (time.perf_counter() - start)


def timed(label: str, target_s: float | None, job: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    start = time.perf_counter()
    result = job()
    wall = time.perf_counter() - start
    row = {"case": label, "wall_s": round(wall, 3), "events": result["events"],
           "events_per_s": round(result["events"] / wall), "target_s": target_s,
           "meets_target": None if target_s is None else wall < target_s}
    for key in ("ttft_s", "tpot_s", "step_s", "time_s"):
        if key in result:
            row[key] = result[key]
    return row


def memory_presets(llama: Any) -> list[dict[str, Any]]:
    """The default run on DRAM presets: simulation cost grows with the channels a transfer spans."""
    return [timed(f"run default, memory {memory}", None, lambda memory=memory: run_request(
        load_hardware(memory=memory), llama, Workload())) for memory in ("ddr4-3200", "hbm3")]


def trace_overhead(hw: Any, llama: Any) -> list[dict[str, Any]]:
    """The same exact decode step with the default (null) sink twice and with a tile-level trace."""
    wl = Workload(prompt=2047, gen=2)
    rows = [timed("decode step --exact, tracing off (repeat)", None,
                  lambda: run_step(hw, llama, wl, "decode", 2048, exact=True))]
    with tempfile.TemporaryDirectory() as out:
        recording = TraceRecording(Path(out), "tile", hw.array.rows * hw.array.cols)

        def traced() -> dict[str, Any]:
            result = run_step(hw, llama, wl, "decode", 2048, exact=True, trace=recording)
            recording.close()
            return result

        rows.append(timed("decode step --exact, tile-level trace", None, traced))
        rows[-1]["trace_mb"] = round((Path(out) / "trace.json").stat().st_size / 1e6, 1)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exact", action="store_true", help="also run prompt 2048 + 256 in --exact mode")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    hw = load_hardware()
    llama = load_model("llama-2-7b")
    long_run = timed("run prompt 2048 + gen 256, default", 20.0,
                     lambda: run_request(hw, llama, Workload(prompt=2048, gen=256)))
    rows = [
        timed("gemm M=64 N=K=4096", 0.5, lambda: run_gemm(hw, 64, 4096, 4096)),
        timed("decode step, context 2048, --exact", 2.0,
              lambda: run_step(hw, llama, Workload(prompt=2047, gen=2), "decode", 2048, exact=True)),
        timed("run default (prompt 512, gen 32)", 60.0, lambda: run_request(hw, llama, Workload())),
        long_run,
        *memory_presets(llama),
        *trace_overhead(hw, llama),
    ]
    if args.exact:
        exact = timed("run prompt 2048 + gen 256, --exact", None,
                      lambda: run_request(hw, llama, Workload(prompt=2048, gen=256), exact=True))
        rows.append(exact)
        for key in ("ttft_s", "tpot_s"):
            long_run[f"{key}_error_vs_exact"] = long_run[key] / exact[key] - 1
    report = {"raw_simpy_timeouts_per_s": round(raw_simpy_timeouts_per_s()), "cases": rows}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"raw SimPy timeouts/s on this machine: {report['raw_simpy_timeouts_per_s']:,}")
    for row in rows:
        verdict = "ok" if row["meets_target"] else "MISSED"
        target = "" if row["target_s"] is None else f" (target < {row['target_s']} s: {verdict})"
        extra = "".join(f", {k} {v:+.3%}" for k, v in row.items() if k.endswith("error_vs_exact"))
        print(f"{row['case']:40s} {row['wall_s']:8.3f} s  {row['events']:>10,} events  "
              f"{row['events_per_s']:>9,} ev/s{target}{extra}")


if __name__ == "__main__":
    main()
