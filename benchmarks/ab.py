"""A/B wall time of mixpe-sim commands: two checkouts, or two installed builds. Not a test: run it by hand.

    git worktree add /tmp/before <commit>
    python benchmarks/ab.py --before /tmp/before --runs 5 -- run --memory hbm3 --json
    python benchmarks/ab.py --before /tmp/before --runs 5 --file cases.txt   # one command per line
    # a pure-Python build against the compiled one (docs/performance.md, "The compiled build"):
    python benchmarks/ab.py --before /tmp/venv-pure --after /tmp/venv-compiled -- run --memory hbm3 --json

`--before` and `--after` (default: this checkout) each name a checkout, run from its source, or a
virtual environment (a directory with `pyvenv.cfg`), whose installed package is run in isolation
(`python -I`: its own interpreter, not the working directory's checkout).

Single runs on a shared 2-core machine differ by up to 1.6x within minutes (docs/performance.md), so
each command runs alternately from both checkouts `--runs` times, each in a fresh process, and the
minimum of each is compared. Both run the same interpreter with matplotlib hidden (no PNGs, whichever
extras are installed); a command's `OUT` is replaced by a fresh temporary directory. The result JSONs
(`--json` commands) are compared too, apart from wall times: a speed-up must not change a number.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

THIS_CHECKOUT = Path(__file__).resolve().parent.parent
# the `mixpe-sim` command's own entry point (console_main), or main() for builds older than it
ENTRY = ("import sys; sys.modules['matplotlib'] = None; from mixpe_sim import cli; "
         "getattr(cli, 'console_main', lambda: sys.exit(cli.main(sys.argv[1:])))()")
WALL_KEYS = ("wall_s", "simulation_wall_s")


def interpreter(side: Path) -> tuple[list[str], dict[str, str]]:
    """How to run mixpe-sim from `side`: a virtual environment's installed package, or a checkout's source."""
    if (side / "pyvenv.cfg").is_file():
        return [str(side / "bin" / "python"), "-I"], dict(os.environ)
    return [sys.executable], {**os.environ, "PYTHONPATH": str(side)}


def run_once(side: Path, args: list[str]) -> tuple[float, str]:
    """Wall seconds of one fresh process running `args` from `side`, and its stdout."""
    python, env = interpreter(side)
    out = tempfile.mkdtemp(prefix="mixpe-ab-")
    try:
        argv = [a.replace("OUT", str(Path(out) / "out")) for a in args]
        start = time.perf_counter()
        done = subprocess.run([*python, "-c", ENTRY, *argv], env=env, check=True, capture_output=True, text=True)
        return time.perf_counter() - start, done.stdout
    finally:
        shutil.rmtree(out, ignore_errors=True)


def without_wall_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_wall_times(v) for k, v in value.items() if k not in WALL_KEYS}
    if isinstance(value, list):
        return [without_wall_times(v) for v in value]
    return value


def same_result(before: str, after: str) -> bool | None:
    """Equal JSON apart from wall times; None when the command does not print JSON."""
    try:
        return without_wall_times(json.loads(before)) == without_wall_times(json.loads(after))
    except json.JSONDecodeError:
        return None


def compare(before: Path, after: Path, args: list[str], runs: int) -> dict[str, Any]:
    walls: dict[str, list[float]] = {"before": [], "after": []}
    outputs: dict[str, str] = {}
    for _ in range(runs):
        for label, side in (("before", before), ("after", after)):
            wall, outputs[label] = run_once(side, args)
            walls[label].append(wall)
    best = {label: min(values) for label, values in walls.items()}
    return {"command": shlex.join(args), "before_s": round(best["before"], 3), "after_s": round(best["after"], 3),
            "after_over_before": round(best["after"] / best["before"], 3),
            "same_result": same_result(outputs["before"], outputs["after"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, required=True,
                        help="a checkout (its root directory) or a virtual environment")
    parser.add_argument("--after", type=Path, default=THIS_CHECKOUT,
                        help="a checkout or a virtual environment (default: this checkout)")
    parser.add_argument("--runs", type=int, default=5, help="runs of each command from each side")
    parser.add_argument("--file", type=Path, help="commands, one per line")
    parser.add_argument("command", nargs="*", help="one mixpe-sim command (after --)")
    args = parser.parse_args()
    commands = [shlex.split(line) for line in args.file.read_text().splitlines() if line.strip()] if args.file else []
    if args.command:
        commands.append(args.command)
    if not commands or args.runs < 1:
        parser.error("give a command (after --) or --file, and --runs >= 1")
    for command in commands:
        row = compare(args.before, args.after, command, args.runs)
        same = {True: "same result", False: "RESULTS DIFFER", None: "no JSON"}[row["same_result"]]
        print(f"{row['command']:72s} before {row['before_s']:7.2f} s  after {row['after_s']:7.2f} s  "
              f"{row['after_over_before']:.3f}  {same}", flush=True)


if __name__ == "__main__":
    main()
