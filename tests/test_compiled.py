"""The compiled build (hatch_build.py: mypyc) times DRAM exactly as the Python source does.

The suite itself imports the checkout's source; a non-editable install carries the compiled channel
timing. A fresh interpreter outside the checkout (`-I`: no current directory, no PYTHONPATH) imports
the installed package and times the same traffic with both its compiled `ChannelTiming` and one
loaded from this checkout's source file; every returned time and the command counts must be equal.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "mixpe_sim" / "hardware" / "dram" / "timing.py"

COMPARE = r"""
import dataclasses, importlib.util, json, random, sys
from mixpe_sim.build_info import compiled_modules
from mixpe_sim.config import load_hardware
import mixpe_sim.hardware.dram.timing as installed

spec = importlib.util.spec_from_file_location("timing_from_source", sys.argv[1])
source = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # dataclasses look it up
spec.loader.exec_module(source)
cases = mismatches = 0
for name in ["ddr4-3200", "ddr5-4800", "lpddr5-6400", "gddr6", "hbm2e", "hbm3"]:
    for mapping in ["row_bank_column_bankgroup", "row_bank_column", "row_column_bank"]:
        for policy in ["open", "closed"]:
            overrides = [("memory.mapping", mapping), ("memory.page_policy", policy)]
            cfg = load_hardware("mixpe-w4a16", name, overrides).memory
            fast, reference = installed.ChannelTiming(cfg), source.ChannelTiming(cfg)
            rng = random.Random(7)
            streams = [rng.randrange(0, 1 << 20) for _ in range(3)]
            now = 0
            for _ in range(400):
                index = rng.randrange(3)
                bursts = rng.choice([1, 3, 8, 32, 34, 64, 100, 700])
                start = streams[index] if rng.random() < 0.9 else rng.randrange(0, 1 << 22)
                streams[index] = start + bursts
                write = index == 2 and rng.random() < 0.5
                now += rng.choice([0, 0, 0, 1000, 50_000, 2_000_000])
                cases += 1
                mismatches += fast.serve(start, bursts, now, write) != reference.serve(start, bursts, now, write)
            fast.finish(now)
            reference.finish(now)
            fields = [f.name for f in dataclasses.fields(reference.stats)]
            mismatches += any(getattr(fast.stats, f) != getattr(reference.stats, f) for f in fields)
print(json.dumps({"compiled": compiled_modules(), "timing_file": installed.__file__, "cases": cases,
                  "mismatches": mismatches}))
"""


def test_the_installed_compiled_dram_timing_equals_the_source(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-I", "-c", COMPARE, str(SOURCE)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    if run.returncode and "No module named 'mixpe_sim" in run.stderr:
        pytest.skip("mixpe-sim is not installed in this interpreter")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    if "mixpe_sim.hardware.dram.timing" not in report["compiled"]:
        pytest.skip(f"the installed build is pure Python ({report['timing_file']}): nothing compiled to compare")
    assert report["cases"] == 6 * 3 * 2 * 400
    assert report["mismatches"] == 0

