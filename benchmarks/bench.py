"""Simulator speed against the targets of docs/performance.md. Not a test: run it by hand.

    python benchmarks/bench.py              # the targets (a few minutes)
    python benchmarks/bench.py --exact      # also prompt 2048 + 256 with every block and step simulated
    python benchmarks/bench.py --serve      # also 1000 served requests (about a minute)

Each case runs the installed `mixpe-sim` command in a fresh process (imports included, as a user
sees it) and is reported in seconds and in t1M: this machine's seconds for one million bare SimPy
timeouts, measured in the same run, so the ratios travel between machines.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import simpy
from ab import without_wall_times  # benchmarks/ab.py: the script's own directory is on the path

# the traced and untraced decode step: the best of three each, run alternately, since single runs on a
# shared machine differ by up to 1.6x within minutes (docs/performance.md) and the target is their ratio
TRACE_PAIR_RUNS = 3


def one_million_timeouts_s() -> float:
    """Seconds for 1 M plain SimPy timeouts from one process: the kernel's raw rate (best of two)."""
    def once() -> float:
        env = simpy.Environment()

        def ticker(env: simpy.Environment):  # type: ignore[no-untyped-def]
            for _ in range(1_000_000):
                yield env.timeout(1)

        env.process(ticker(env))
        start = time.perf_counter()
        env.run()
        return time.perf_counter() - start

    return min(once(), once())


def run_cli(args: list[str]) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    # -I: the installed package, never the checkout in the working directory (which `-m` would import)
    done = subprocess.run([sys.executable, "-I", "-m", "mixpe_sim", *args, "--json"], check=True,
                          capture_output=True, text=True)
    return time.perf_counter() - start, json.loads(done.stdout)


def case(label: str, args: list[str], t1m: float, target_t1m: float | None = None,
         done: tuple[float, dict[str, Any]] | None = None) -> dict[str, Any]:
    """`done`: the wall time and result of runs already made (else one run now)."""
    wall, result = done or run_cli(args)
    return {"case": label, "wall_s": round(wall, 2), "t1M": round(wall / t1m, 2), "target_t1M": target_t1m,
            "events": result.get("events", 0), "events_per_s": round(result.get("events", 0) / wall),
            "result": result}


def fastest_alternating(commands: list[list[str]]) -> list[tuple[float, dict[str, Any]]]:
    """Each command's fastest of TRACE_PAIR_RUNS runs (wall time, result), the commands taking turns."""
    runs = [[run_cli(args) for args in commands] for _ in range(TRACE_PAIR_RUNS)]
    return [min((turn[index] for turn in runs), key=lambda done: done[0]) for index in range(len(commands))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exact", action="store_true", help="also prompt 2048 + gen 256 with --exact")
    parser.add_argument("--serve", action="store_true", help="also 1000 requests through `serve`")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    t1m = one_million_timeouts_s()
    decode = ["step", "--phase", "decode", "--context", "2048", "--exact"]
    out = tempfile.mkdtemp(prefix="mixpe-bench-")
    traced_args = [*decode, "--trace", "--no-plots", "--out", out]
    untraced, traced_run = fastest_alternating([decode, traced_args])
    rows = [
        case("gemm M=64 N=K=4096", ["gemm", "--m", "64", "--n", "4096", "--k", "4096"], t1m, 0.5),
        case("decode step, context 2048, --exact", decode, t1m, 1.0, untraced),
        case("run (prompt 512, gen 32), flat", ["run", "--memory", "flat"], t1m),
    ]
    for memory in ("ddr4-3200", "hbm3"):
        row = case(f"run (prompt 512, gen 32), {memory}", ["run", "--memory", memory], t1m)
        row["vs_flat"] = round(row["wall_s"] / rows[2]["wall_s"], 2)
        row["target_vs_flat"] = 1.5
        rows.append(row)
    rows.append(case("run prompt 2048 + gen 256, default", ["run", "--prompt", "2048", "--gen", "256"], t1m))
    traced = case("decode step --exact, --trace (tile level)", traced_args, t1m, None, traced_run)
    traced["vs_untraced"] = round(traced["wall_s"] / rows[1]["wall_s"], 2)
    traced["target_vs_untraced"] = 1.5
    traced["trace_mb"] = round((Path(out) / "trace.json").stat().st_size / 1e6, 1)
    rows.append(traced)
    shutil.rmtree(out)
    with tempfile.TemporaryDirectory() as out:  # the same, plus the PNGs when the plot extra is installed
        plotted = case("decode step --exact, --trace + PNGs", [*decode, "--trace", "--out", out], t1m)
        plotted["vs_untraced"] = round(plotted["wall_s"] / rows[1]["wall_s"], 2)
        rows.append(plotted)
    if args.exact:
        exact = case("run prompt 2048 + gen 256, --exact", ["run", "--prompt", "2048", "--gen", "256", "--exact"],
                     t1m, 100.0)
        default = rows[5]["result"]  # the default-mode 2048 + 256 run above
        for key in ("ttft_s", "tpot_s"):
            exact[f"default_{key}_error"] = default[key] / exact["result"][key] - 1
        pooled = case("run prompt 2048 + gen 256, --exact --workers 2",
                      ["run", "--prompt", "2048", "--gen", "256", "--exact", "--workers", "2"], t1m, 100.0)
        same = without_wall_times(pooled["result"]) == without_wall_times(exact["result"])
        pooled["same_result_as_one_worker"] = same
        rows += [exact, pooled]
    if args.serve:
        served = case("serve 1000 requests (256 + 128, 8 req/s, dc-mixpe-w4a16)",
                      ["serve", "--hw", "dc-mixpe-w4a16", "--prompt", "256", "--gen", "128", "--qps", "8",
                       "--requests", "1000", "--seed", "7"], t1m, 60.0)
        served["iterations_per_s"] = round(served["result"]["iterations"] / served["wall_s"], 1)
        served["step_model_error"] = served["result"]["step_model_error"]
        rows.append(served)
    for row in rows:
        del row["result"]
    report = {"t1M_s": round(t1m, 3), "cases": rows}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"t1M (1 M bare SimPy timeouts) on this machine: {t1m:.2f} s")
    for row in rows:
        extra = "".join(f", {k} {v}" for k, v in row.items()
                        if k in ("target_t1M", "vs_flat", "vs_untraced", "iterations_per_s", "step_model_error",
                                 "same_result_as_one_worker")
                        or k.endswith("_error"))
        print(f"{row['case']:58s} {row['wall_s']:8.2f} s {row['t1M']:7.2f} t1M  {row['events']:>10,} events"
              f"{extra}")


if __name__ == "__main__":
    main()
