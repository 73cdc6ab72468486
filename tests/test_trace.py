"""Traces and timelines: valid Chrome JSON, slices inside the run and never partly overlapping on a
lane, counters that integrate back to the result's bytes, timeline stalls that add up to the result."""

from __future__ import annotations

import csv
import itertools
import json
import re
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from librt.strings import StringWriter

from mixpe_sim.cli import main
from mixpe_sim.runs.llm import Workload, run_step
from mixpe_sim.trace.chrome import ChromeTraceWriter, fixed_us, write_us
from mixpe_sim.trace.recording import TraceRecording
from mixpe_sim.trace.timeline import TimelineRecorder
from mixpe_sim.workload.models import load_model
from tests.conftest import DATA, hw_with

TINY = str(DATA / "tiny-llama.json")
US_PER_S = Decimal(10**6)


def traced_step(out: Path, phase: str = "decode", level: str = "tile", memory: str = "ddr4-3200",
                **overrides: Any) -> dict[str, Any]:
    hw = hw_with(memory=memory, **overrides)
    recording = TraceRecording(out, level, hw.array.rows * hw.array.cols)  # type: ignore[arg-type]
    context = 256
    wl = Workload(model=TINY, prompt=context if phase == "prefill" else context - 1, gen=1)
    result = run_step(hw, load_model(TINY), wl, phase, context, exact=True, trace=recording)  # type: ignore[arg-type]
    recording.close()
    return result


def load_trace(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text(), parse_float=Decimal)["traceEvents"]


def process_names(events: list[dict[str, Any]]) -> dict[int, str]:
    return {e["pid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}


@pytest.fixture(scope="module")
def decode_trace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("decode-trace")
    return out, traced_step(out, level="transaction")


def test_trace_is_json_with_fixed_point_times(decode_trace: tuple[Path, dict[str, Any]]) -> None:
    out, _ = decode_trace
    text = (out / "trace.json").read_text()
    events = json.loads(text)["traceEvents"]
    assert events and all("ph" in e for e in events)
    assert not re.search(r'"(ts|dur)":-?[0-9.]*[eE]', text)
    names = set(process_names(events).values())
    assert {"controller", "pe_array", "dma.weight", "dma.store", "dram", "buffer.weight"} <= names


def test_slices_lie_inside_the_run_and_never_partly_overlap(decode_trace: tuple[Path, dict[str, Any]]) -> None:
    out, result = decode_trace
    events = load_trace(out / "trace.json")
    end_us = Decimal(str(result["step_s"])) * US_PER_S
    lanes: dict[tuple[int, int], list[tuple[Decimal, Decimal]]] = {}
    for e in events:
        if e["ph"] == "X":
            assert e["ts"] >= 0 and e["ts"] + e["dur"] <= end_us + Decimal("0.000001")
            lanes.setdefault((e["pid"], e["tid"]), []).append((e["ts"], e["ts"] + e["dur"]))
    for slices in lanes.values():
        slices.sort()
        for (_, previous_end), (start, _) in itertools.pairwise(slices):
            assert start >= previous_end


def counter_integral(events: list[dict[str, Any]], component: str, name: str) -> Decimal:
    """Integrate a step-function counter track over time: sum of value x (next ts - ts)."""
    pid = {v: k for k, v in process_names(events).items()}[component]
    points = sorted((e["ts"], next(iter(e["args"].values()))) for e in events
                    if e["ph"] == "C" and e["pid"] == pid and e["name"] == name)
    return sum(((b[0] - a[0]) * a[1] for a, b in itertools.pairwise(points)), Decimal(0))


@pytest.mark.parametrize("memory", ["ddr4-3200", "flat", "ideal"])
def test_dram_bandwidth_counter_integrates_to_the_result_bytes(tmp_path: Path, memory: str) -> None:
    result = traced_step(tmp_path, memory=memory)
    events = load_trace(tmp_path / "trace.json")
    moved = counter_integral(events, "dram", "bandwidth") * 1000  # GB/s x us = 1e3 bytes
    assert float(moved) == pytest.approx(result["dram_bytes_read"] + result["dram_bytes_written"], rel=1e-9)


def test_active_pe_counter_matches_the_result_utilisation(decode_trace: tuple[Path, dict[str, Any]]) -> None:
    out, result = decode_trace
    events = load_trace(out / "trace.json")
    hw = hw_with()
    pe_us = counter_integral(events, "pe_array", "active PEs")
    utilisation = float(pe_us) / (result["step_s"] * 1e6 * hw.array.rows * hw.array.cols)
    assert utilisation == pytest.approx(result["pe_utilization"], rel=1e-3)


def read_timeline(path: Path) -> list[dict[str, float]]:
    with path.open() as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


@pytest.mark.parametrize("phase", ["prefill", "decode"])
def test_timeline_stalls_add_up_to_the_result_breakdown(tmp_path: Path, phase: str) -> None:
    result = traced_step(tmp_path, phase=phase)
    rows = read_timeline(tmp_path / "timeline.csv")
    assert rows[0]["start_s"] == 0 and rows[-1]["end_s"] == pytest.approx(result["step_s"], rel=1e-12)
    for cause, seconds in result["stall_breakdown_s"].items():
        in_timeline = sum(row.get(f"stall_{cause}_s", 0.0) for row in rows)
        assert in_timeline == pytest.approx(seconds, rel=1e-9, abs=1e-15), cause
    moved = sum(row["dram_bw_bytes_per_s"] * (row["end_s"] - row["start_s"]) for row in rows)
    assert moved == pytest.approx(result["dram_bytes_read"] + result["dram_bytes_written"], rel=1e-9)


def test_tracing_does_not_change_results(tmp_path: Path) -> None:
    hw = hw_with(memory="ddr4-3200")
    wl = Workload(model=TINY, prompt=255, gen=1)
    plain = run_step(hw, load_model(TINY), wl, "decode", 256, exact=False)
    traced = traced_step(tmp_path)
    exact_plain = run_step(hw, load_model(TINY), wl, "decode", 256, exact=True)
    for result in (plain, traced, exact_plain):
        result.pop("wall_s")
    assert traced == exact_plain
    assert plain["step_s"] > 0


def test_trace_levels_choose_the_detail(tmp_path: Path) -> None:
    counts = {}
    for level in ("layer", "tile", "transaction"):
        out = tmp_path / level
        traced_step(out, level=level)
        events = load_trace(out / "trace.json")
        names = process_names(events)
        slices = {names[e["pid"]] for e in events if e["ph"] == "X"}
        counts[level] = sum(e["ph"] == "X" for e in events)
        assert "controller" in slices
        assert ("pe_array" in slices) == (level != "layer")
        assert ("dram" in slices) == (level == "transaction")
    assert counts["layer"] < counts["tile"] < counts["transaction"]


def test_layer_markers_cover_every_block(decode_trace: tuple[Path, dict[str, Any]]) -> None:
    out, _ = decode_trace
    events = load_trace(out / "trace.json")
    layers = {e["name"] for e in events if e["ph"] == "X" and e["name"].startswith("layer ")}
    assert layers == {f"layer {i}" for i in range(load_model(TINY).layers)}


def test_run_trace_shows_prefill_then_the_first_token(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["run", "--model", TINY, "--prompt", "64", "--gen", "3", "--exact", "--trace", "--out", str(out),
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    events = load_trace(out / "trace.json")
    markers = sorted((e["ts"], e["name"]) for e in events if e["ph"] == "i")
    assert [name.split(" step")[0] for _, name in markers] == ["prefill", "decode"]
    prefill_end = Decimal(str(result["ttft_s"])) * US_PER_S
    assert abs(markers[1][0] - prefill_end) < Decimal("0.000002")  # exact: the traced prefill is the TTFT
    assert all(e["ts"] + e["dur"] <= markers[1][0] for e in events if e["ph"] == "X" and e["ts"] < markers[1][0])
    for name in ("result.json", "timeline.csv", "trace.json", "bandwidth.png", "occupancy.png",
                 "stalls_per_op.png", "roofline.png"):
        assert (out / name).stat().st_size > 0, name


def test_no_plots_writes_the_trace_and_timeline_only(tmp_path: Path) -> None:
    assert main(["step", "--model", TINY, "--phase", "decode", "--context", "64", "--trace", "--no-plots",
                 "--out", str(tmp_path), "--json", "--quiet"]) == 0
    assert (tmp_path / "trace.json").stat().st_size > 0 and (tmp_path / "timeline.csv").stat().st_size > 0
    assert not list(tmp_path.glob("*.png"))


def test_trace_needs_out_dir(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["step", "--phase", "decode", "--model", TINY, "--trace"]) == 2
    assert "--trace: needs --out DIR" in capsys.readouterr().err


def test_aborted_trace_leaves_no_file(tmp_path: Path) -> None:
    writer = ChromeTraceWriter(tmp_path / "trace.json")
    writer.span("pe_array", "tiles", "t", 0, 10)
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_plot_without_matplotlib_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    traced_step(tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["plot", str(tmp_path)]) == 2
    assert "pip install 'mixpe-sim[plot]'" in capsys.readouterr().err


def test_plot_of_a_directory_without_data_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plot", str(tmp_path)]) == 2
    assert "nothing to plot" in capsys.readouterr().err


def test_plot_of_a_damaged_file_names_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "result.json").write_text('{"per_op": [')
    assert main(["plot", str(tmp_path)]) == 2
    assert f"{tmp_path / 'result.json'}: not mixpe-sim output" in capsys.readouterr().err


def test_compare_out_dir_plots_a_bar_chart(tmp_path: Path) -> None:
    assert main(["compare", "--hw", "mixpe-w4a16", "--hw", "fp16", "--model", TINY, "--prompt", "32", "--gen", "2",
                 "--out", str(tmp_path), "--json"]) == 0
    assert main(["plot", str(tmp_path)]) == 0
    assert (tmp_path / "compare.png").stat().st_size > 0


def test_fixed_point_microseconds_are_exact() -> None:
    assert fixed_us(0) == "0.0" and fixed_us(1) == "0.000001" and fixed_us(1_500_000) == "1.5"
    assert fixed_us(123_456_789_012) == "123456.789012"


@given(st.integers(0, 10**18))
def test_fixed_point_microseconds_are_the_exact_decimal(time_ps: int) -> None:
    from decimal import Decimal

    text = fixed_us(time_ps)
    assert re.fullmatch(r"\d+\.\d{1,6}", text) and (text.endswith(".0") or not text.endswith("0"))
    assert Decimal(text) == Decimal(time_ps) / 10**6
    out = StringWriter()
    write_us(out, time_ps)
    assert out.getvalue() == text  # the digit-by-digit writer the formatter uses


spans = st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 10**7), st.integers(0, 10**6)), max_size=60)


@settings(max_examples=60, deadline=None)
@given(spans)
def test_timeline_windows_conserve_every_amount(items: list[tuple[int, int, int]]) -> None:
    timeline = TimelineRecorder(pe_count=1)
    for start, length, nbytes in items:
        timeline.span("dram", "link", "read", start, start + length, {"bytes": nbytes})
    assert timeline.total("bytes.dram") == pytest.approx(sum(b for _, _, b in items), rel=1e-9, abs=1e-6)
    assert len(timeline.windows()) <= 2000


def test_trace_json_says_which_tool_version_and_hardware_wrote_it(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["step", "--model", TINY, "--phase", "decode", "--context", "64", "--trace", "--out",
                 str(tmp_path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    other = json.loads((tmp_path / "trace.json").read_text())["otherData"]
    assert other["tool"] == "mixpe-sim" and other["version"] == result["version"]
    from mixpe_sim.report.files import config_sha256

    assert other["hardware_sha256"] == config_sha256(result["config"]["hardware"])
