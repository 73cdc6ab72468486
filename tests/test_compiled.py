"""The compiled build (hatch_build.py: mypyc) gives what the Python source gives, bit for bit.

The suite imports the checkout's source; a non-editable install carries the hot modules compiled. A
fresh interpreter outside the checkout (`-I`: no current directory, no PYTHONPATH) runs the installed
package; the tests compare it with the source on DRAM channel timing and striping (every returned
time of random traffic) and on whole traced runs (result, trace.json and timeline.csv). They skip when the installed
package is the checkout itself or a pure-Python build.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.ab import without_wall_times
from mixpe_sim.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "tests" / "data" / "tiny-llama.json")

COMPARE_TIMING = r"""
import dataclasses, importlib.util, json, random, sys
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
print(json.dumps({"cases": cases, "mismatches": mismatches}))
"""

COMPARE_MEMORY = r"""
import dataclasses, importlib.util, json, random, sys
from mixpe_sim.config import load_hardware
import mixpe_sim.hardware.dram.memory as installed


def from_source(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# an interpreted class cannot subclass a compiled one: the source striping gets the source base
compiled_base = sys.modules["mixpe_sim.hardware.memory"]
sys.modules["mixpe_sim.hardware.memory"] = from_source("base_from_source", sys.argv[2])
source = from_source("memory_from_source", sys.argv[1])
sys.modules["mixpe_sim.hardware.memory"] = compiled_base
cases = mismatches = 0
for name in ["ddr4-3200", "lpddr5-6400", "hbm3"]:
    for model in ["lockstep", "independent"]:
        cfg = load_hardware("mixpe-w4a16", name, [("memory.channel_model", model)]).memory
        fast, reference = installed.DramMemory(cfg), source.DramMemory(cfg)
        rng = random.Random(11)
        now = 0
        for _ in range(300):
            addr, nbytes = rng.randrange(0, 1 << 26), rng.choice([64, 100, 2048, 8704, 43_520, 200_000])
            write = rng.random() < 0.2
            now += rng.choice([0, 0, 1000, 50_000])
            cases += 1
            mismatches += fast.request(now, addr, nbytes, write) != reference.request(now, addr, nbytes, write)
        fast.finish(now)
        reference.finish(now)
        mismatches += dataclasses.asdict(fast.counters) != dataclasses.asdict(reference.counters)
print(json.dumps({"cases": cases, "mismatches": mismatches}))
"""


def installed_python(code: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter that imports the installed package, not this checkout."""
    return subprocess.run([sys.executable, "-I", "-c", code, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The installed package's compiled modules; skips unless it is a compiled build."""
    run = installed_python("import json; from mixpe_sim.build_info import compiled_modules; "
                           "print(json.dumps(compiled_modules()))", cwd=tmp_path_factory.mktemp("probe"))
    if run.returncode:
        pytest.skip(f"mixpe-sim is not installed in this interpreter: {run.stderr.strip().splitlines()[-1]}")
    modules: list[str] = json.loads(run.stdout)
    if not modules:
        pytest.skip("the installed mixpe-sim is pure Python (an editable or MIXPE_SIM_PURE build)")
    return modules


def test_the_compiled_dram_timing_equals_the_source(compiled: list[str], tmp_path: Path) -> None:
    assert "mixpe_sim.hardware.dram.timing" in compiled
    run = installed_python(COMPARE_TIMING, str(ROOT / "mixpe_sim" / "hardware" / "dram" / "timing.py"),
                           cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"cases": 6 * 3 * 2 * 400, "mismatches": 0}


def test_the_compiled_dram_striping_equals_the_source(compiled: list[str], tmp_path: Path) -> None:
    assert "mixpe_sim.hardware.dram.memory" in compiled
    run = installed_python(COMPARE_MEMORY, str(ROOT / "mixpe_sim" / "hardware" / "dram" / "memory.py"),
                           str(ROOT / "mixpe_sim" / "hardware" / "memory.py"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"cases": 3 * 2 * 300, "mismatches": 0}


@pytest.mark.parametrize("argv", [
    ["step", "--phase", "decode", "--context", "300", "--memory", "hbm3", "--trace-level", "transaction"],
    ["step", "--phase", "prefill", "--context", "128", "--memory", "ddr4-3200"],
    ["run", "--prompt", "64", "--gen", "3", "--hw", "mixpe-w4a8"],
], ids=["decode-hbm3-transactions", "prefill-ddr4", "run-flat-w4a8"])
def test_a_compiled_traced_run_equals_the_source(compiled: list[str], tmp_path: Path, argv: list[str]) -> None:
    """DRAM timing and the trace writers compiled: the same result and the same trace files."""
    assert {"mixpe_sim.trace.chrome", "mixpe_sim.trace.timeline"} <= set(compiled)
    common = [*argv, "--model", TINY, "--exact", "--trace", "--no-plots", "--quiet"]
    assert main([*common, "--out", str(tmp_path / "source")]) == 0
    run = subprocess.run([sys.executable, "-I", "-m", "mixpe_sim", *common, "--out", str(tmp_path / "installed")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    source, installed = tmp_path / "source", tmp_path / "installed"
    assert without_wall_times(json.loads((installed / "result.json").read_text())) == \
        without_wall_times(json.loads((source / "result.json").read_text()))
    for name in ("trace.json", "timeline.csv"):
        assert (installed / name).read_bytes() == (source / name).read_bytes(), name


FEED_ODD_VALUES = r"""
import sys
from pathlib import Path
from mixpe_sim.trace.recording import TraceRecording

values = [1, 1.0, True, [1, 2], "x", None, 2 ** 70, -(2 ** 63), -5, float("inf"), -0.0, 1e300, 7]
recording = TraceRecording(Path(sys.argv[1]), "tile", 1, background=sys.argv[2] == "1", records_per_chunk=97)
lane = recording.lane("dma.weight", "load", ("token", "bytes", "addr", "x", "y"))
for at in range(2000):
    value = values[at % len(values)]
    recording.span("controller", "ops", "o", 10 * at, 10 * at + 5, {"op": value})
    recording.instant("controller", "mark", 10 * at, {"op": value})
    recording.slice(lane, "load", 10 * at, 10 * at + 25, value, at, values[(at + 3) % len(values)], 7, value)
recording.close()
"""


@pytest.mark.parametrize("background", ["0", "1"])
def test_the_compiled_recording_writes_odd_values_as_the_source(compiled: list[str], tmp_path: Path,
                                                                  background: str) -> None:
    """Argument values of every kind (packed words, or objects beside them) through the compiled recording."""
    assert "mixpe_sim.trace.records" in compiled
    (tmp_path / "source").mkdir()
    (tmp_path / "installed").mkdir()
    assert subprocess.run([sys.executable, "-c", FEED_ODD_VALUES, str(tmp_path / "source"), background], cwd=ROOT,
                          capture_output=True, text=True, timeout=300).returncode == 0
    run = installed_python(FEED_ODD_VALUES, str(tmp_path / "installed"), background, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    for name in ("trace.json", "timeline.csv"):
        assert (tmp_path / "installed" / name).read_bytes() == (tmp_path / "source" / name).read_bytes(), name
