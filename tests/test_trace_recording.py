"""The `--trace` recording (records kept as columns, text made by a forked formatter) writes exactly the
files the streaming writer and timeline make record by record, whether the formatter runs beside the
simulation, in-process, fails midway or is aborted; the record interface's lanes and adapters."""

from __future__ import annotations

import enum
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from mixpe_sim.api import simulate_step
from mixpe_sim.report.files import csv_text
from mixpe_sim.runs.llm import Workload, run_step
from mixpe_sim.trace.background import FORK_AVAILABLE
from mixpe_sim.trace.chrome import ChromeTraceWriter
from mixpe_sim.trace.recording import TIMELINE_FILE, TRACE_FILE, TraceRecording, counter_track_lines
from mixpe_sim.trace.sink import TeeSink, TraceLane, TraceSink, as_trace_sink
from mixpe_sim.trace.timeline import TimelineRecorder
from mixpe_sim.workload.models import load_model
from tests.conftest import DATA, hw_with

TINY = str(DATA / "tiny-llama.json")
CASES = {  # (phase, trace level, memory): flat link, DRAM channels per transaction, layers only
    "decode-tile-flat": ("decode", "tile", "flat"),
    "prefill-tile-ddr4": ("prefill", "tile", "ddr4-3200"),
    "decode-transaction-hbm3": ("decode", "transaction", "hbm3"),
    "decode-layer-flat": ("decode", "layer", "flat"),
}


class StreamingReference(TeeSink):
    """The record-by-record path the recording replaces: every record through `span` into the
    streaming writer and the timeline (the base class turns lane records into spans and counters)."""

    def __init__(self, out: Path, level: Any, pe_count: int) -> None:
        self.out = out
        self.writer = ChromeTraceWriter(out / TRACE_FILE, level)
        self.timeline = TimelineRecorder(pe_count)
        super().__init__(self.writer, self.timeline)

    def close(self) -> None:
        self.timeline.close()
        self.writer.write_lines(counter_track_lines(self.writer, self.timeline))
        self.writer.close()
        (self.out / TIMELINE_FILE).write_text(csv_text(self.timeline.rows()))


def traced(sink_for: Any, out: Path, case: str) -> dict[str, Any]:
    phase, level, memory = CASES[case]
    hw = hw_with(memory=memory)
    sink = sink_for(out, level, hw.array.rows * hw.array.cols)
    context = 192
    wl = Workload(model=TINY, prompt=context if phase == "prefill" else context - 1, gen=1)
    result = run_step(hw, load_model(TINY), wl, phase, context, exact=True, trace=sink)
    sink.close()
    return result


def files(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in (TRACE_FILE, TIMELINE_FILE)}


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, bytes]]:
    made = {}
    for case in CASES:
        out = tmp_path_factory.mktemp(f"reference-{case}")
        traced(StreamingReference, out, case)
        made[case] = files(out)
    return made


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("background", [False, True])
def test_recording_writes_the_streaming_writers_bytes(tmp_path: Path, references: dict[str, dict[str, bytes]],
                                                       case: str, background: bool) -> None:
    """Small chunks, so each run hands over many (and the formatter appends many)."""
    traced(lambda out, level, pes: TraceRecording(out, level, pes, background=background, records_per_chunk=97),
           tmp_path, case)
    assert files(tmp_path) == references[case]
    assert sorted(p.name for p in tmp_path.iterdir()) == [TIMELINE_FILE, TRACE_FILE]  # no chunk file left


@pytest.mark.skipif(not FORK_AVAILABLE, reason="the formatter process needs fork (Linux)")
def test_a_formatter_that_dies_changes_nothing(tmp_path: Path, references: dict[str, dict[str, bytes]]) -> None:
    """Killed before the first chunk: the recording formats every chunk itself on close."""
    def killed(out: Path, level: Any, pes: int) -> TraceRecording:
        recording = TraceRecording(out, level, pes, records_per_chunk=97)
        os.kill(recording._formatter._pid, signal.SIGKILL)
        return recording

    traced(killed, tmp_path, "decode-tile-flat")
    assert files(tmp_path) == references["decode-tile-flat"]


@pytest.mark.skipif(not FORK_AVAILABLE, reason="the formatter process needs fork (Linux)")
def test_a_formatter_that_fails_midway_is_cut_back(tmp_path: Path, references: dict[str, dict[str, bytes]],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The formatter appends the first chunks' lines, then exits 1: its lines are cut off and the
    recording writes them all."""
    import mixpe_sim.trace.background as background

    serve = background._serve

    def failing(text: Any, pipe: int, trace_file: str, *rest: Any) -> None:
        with open(trace_file, "a") as out:
            out.write("half a line")
        os.close(pipe)
        os._exit(1)

    monkeypatch.setattr(background, "_serve", failing)
    traced(lambda out, level, pes: TraceRecording(out, level, pes, records_per_chunk=97), tmp_path, "decode-tile-flat")
    monkeypatch.setattr(background, "_serve", serve)
    assert files(tmp_path) == references["decode-tile-flat"]


def test_an_aborted_recording_leaves_no_file(tmp_path: Path) -> None:
    hw = hw_with(memory="flat")
    recording = TraceRecording(tmp_path, "tile", hw.array.rows * hw.array.cols, records_per_chunk=97)
    wl = Workload(model=TINY, prompt=63, gen=1)
    run_step(hw, load_model(TINY), wl, "decode", 64, exact=True, trace=recording)
    recording.abort()
    assert list(tmp_path.iterdir()) == []


class PlainSink:
    """A sink that is not a TraceSink: any object with the record methods (docs/traces.md)."""

    enabled = True

    def __init__(self) -> None:
        self.spans: list[tuple[str, str, str, int, int, dict[str, Any] | None]] = []
        self.counters = 0

    def span(self, component: str, lane: str, name: str, start_ps: int, end_ps: int,
             args: dict[str, Any] | None = None) -> None:
        self.spans.append((component, lane, name, start_ps, end_ps, args))

    def counter(self, component: str, name: str, time_ps: int, value: float) -> None:
        self.counters += 1

    def instant(self, component: str, name: str, time_ps: int, args: dict[str, Any] | None = None) -> None:
        return None

    def close(self) -> None:
        return None


def test_any_object_with_the_record_methods_sees_every_tile_and_transfer() -> None:
    sink = PlainSink()
    result = simulate_step(hw_with(memory="flat"), TINY, "decode", 64, exact=True, sink=sink)
    tiles = [args for component, lane, _, _, _, args in sink.spans if (component, lane) == ("pe_array", "tiles")]
    loads = [args for component, lane, _, _, _, args in sink.spans if component == "dma.weight"]
    assert tiles and set(tiles[0]) == {"op", "m", "n", "k", "active_pes"}
    assert sum(t["m"] * t["n"] * t["k"] for t in tiles) == sum(op["macs"] for op in result.per_op)
    assert loads and set(loads[0]) == {"token", "bytes", "addr"}
    assert sum(a["bytes"] for c, lane, _, _, _, a in sink.spans if (c, lane) == ("dram", "link") and a) \
        == result.dram_bytes_read + result.dram_bytes_written
    assert sink.counters > 0  # buffer occupancy, as counters


def test_a_lanes_values_are_bound_to_its_keys_in_order() -> None:
    class Spans(TraceSink):
        def __init__(self) -> None:
            self.enabled = True
            self.spans: list[tuple[Any, ...]] = []

        def span(self, component: str, lane: str, name: str, start_ps: int, end_ps: int,
                 args: dict[str, Any] | None = None) -> None:
            self.spans.append((component, lane, name, start_ps, end_ps, args))

    sink = Spans()
    lane = sink.lane("dma.weight", "load", ("token", "bytes", "addr"))
    sink.slice(lane, "load", 10, 20, 7, 4096, 123)
    sink.slice(sink.lane("pe_array", "stall"), "drain", 20, 30)
    assert sink.spans == [("dma.weight", "load", "load", 10, 20, {"token": 7, "bytes": 4096, "addr": 123}),
                          ("pe_array", "stall", "drain", 20, 30, None)]
    assert as_trace_sink(sink) is sink
    with pytest.raises(ValueError, match="at most 5"):
        sink.lane("x", "y", ("a", "b", "c", "d", "e", "f"))
    assert isinstance(lane, TraceLane)


class Grade(enum.IntEnum):
    HIGH = 3


@pytest.mark.parametrize("background", [False, True])
def test_equal_values_of_other_types_are_written_as_themselves(tmp_path: Path, background: bool) -> None:
    """1, 1.0 and True are equal as keys but print differently; a list is no key at all; ints beyond 64
    bits, negative ones, special floats and an int subclass travel as themselves; a dict of seven
    arguments too."""
    records = [("op", 1), ("op", 1.0), ("op", True), ("op", 1), ("op", [1, 2]), ("op", "x"), ("op", None),
               ("op", 2 ** 70), ("op", -(2 ** 63)), ("op", -5), ("op", float("inf")), ("op", -0.0), ("op", 1e300),
               ("op", Grade.HIGH)]  # an int subclass: JSON writes it, marshal cannot (the chunk goes as pickle)
    values = [value for _, value in records]

    def feed(sink: TraceSink) -> None:
        lane = sink.lane("dma.weight", "load", ("token", "bytes", "addr", "x", "y"))
        for at, (key, value) in enumerate(records * 200):
            sink.span("controller", "ops", "o", 10 * at, 10 * at + 5, {key: value})
            sink.instant("controller", "mark", 10 * at, {key: value})
            sink.slice(lane, "load", 10 * at, 10 * at + 25, value, at, values[(at + 3) % len(values)], 7, value)
        sink.span("controller", "wide", "w", 0, 9, {f"k{i}": values[i] for i in range(7)})
        sink.close()

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    feed(StreamingReference(tmp_path / "a", "tile", 1))
    feed(TraceRecording(tmp_path / "b", "tile", 1, background=background, records_per_chunk=97))
    assert files(tmp_path / "a") == files(tmp_path / "b")


def test_a_record_with_more_arguments_than_a_word_has_kinds_for_is_refused(tmp_path: Path) -> None:
    recording = TraceRecording(tmp_path, "tile", 1, background=False)
    with pytest.raises(ValueError, match="at most 31 arguments"):
        recording.span("controller", "ops", "o", 0, 1, {f"k{i}": i for i in range(32)})
    recording.abort()
