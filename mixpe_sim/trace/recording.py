"""`--trace`: one sink that writes trace.json and integrates the timeline, written together on close.

Each record the trace level keeps is written as packed words into a native buffer (trace/records.py:
lane, name id, times, argument values; no Python object per value) and turned into text a chunk at a
time beside the simulation (trace/background.py): the same bytes the streaming writer makes record by
record (`ChromeTraceWriter.span`), off the simulation's path. The timeline integrates each record as
it arrives; pids are numbered here as records first arrive, sub-lanes (tids) where the text is made.

Counter tracks in the trace come from the timeline windows (DRAM and DMA bandwidth, buffer occupancy,
active PEs), so integrating a bandwidth counter over time gives back exactly the bytes moved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from librt.strings import BytesWriter, write_i64_le
from librt.vecs import vec

from mixpe_sim.report.output import write_atomic
from mixpe_sim.trace.background import ChunkFormatter
from mixpe_sim.trace.chrome import ChromeTraceWriter, TraceLevel, fixed_us
from mixpe_sim.trace.records import NAME_SHIFT, VALUE_BITS, LaneEntry, put_value, put_values
from mixpe_sim.trace.sink import TraceLane, TraceSink
from mixpe_sim.trace.timeline import ACTIVE_PES, PE_ARRAY, Level, TimelineRecorder

TRACE_FILE: Final = "trace.json"
TIMELINE_FILE: Final = "timeline.csv"
RECORDS_PER_CHUNK: Final = 1 << 14  # records handed to the formatter together (the last one is the wait on close)
NO_SLOT: Final = -1
_INSTANT: Final = "\0instant"  # the lane key of a component's instants (not a lane name a component can use)


class _RecordedLane:
    """What the recording does with a lane's records: which timeline series they feed, and whether
    (and as which lane and name) the trace level writes them."""

    __slots__ = ("active_bins", "active_slot", "arity", "bytes_bins", "bytes_key", "bytes_slot", "component", "index",
                 "instant", "keys", "lane", "level", "level_key", "name", "name_id", "pid", "stall", "written")

    def __init__(self, index: int, component: str, lane: str, keys: tuple[str, ...], timeline: TimelineRecorder,
                 written: bool) -> None:
        self.index, self.component, self.lane, self.keys = index, component, lane, keys
        self.arity = len(keys)
        self.instant = lane == _INSTANT
        self.written = written
        self.pid = 0  # numbered at the lane's first written record
        self.name: str | None = None  # the last record's name, and its id
        self.name_id = 0
        self.bytes_slot = keys.index("bytes") if "bytes" in keys else NO_SLOT
        self.bytes_key = timeline.key("bytes", component)
        self.bytes_bins: vec[float] | None = None  # the series, once it has an amount
        # as TimelineRecorder.span: the PE array's stalls by cause, else its active PEs
        self.stall = component == PE_ARRAY and lane == "stall"
        self.active_slot = keys.index("active_pes") if component == PE_ARRAY and not self.stall \
            and "active_pes" in keys else NO_SLOT
        self.active_bins: vec[float] | None = None
        self.level_key = timeline.key(component, lane)
        self.level: Level | None = None  # the counter, once it has a value


def _number(slot: int, v0: object, v1: object, v2: object, v3: object, v4: object) -> float:
    """The value in `slot`, as the timeline integrates it."""
    value = v0 if slot == 0 else v1 if slot == 1 else v2 if slot == 2 else v3 if slot == 3 else v4
    return float(value)  # type: ignore[arg-type]  # a number: the lane's "bytes" or "active_pes"


class TraceRecording(TraceSink):
    """`background=False`: format every chunk in this process (the same files, later and slower)."""

    def __init__(self, out_dir: Path, level: TraceLevel, pe_count: int, hardware_sha256: str = "",
                 background: bool = True, records_per_chunk: int = RECORDS_PER_CHUNK) -> None:
        self.enabled = True
        self.out_dir = out_dir
        self.timeline = TimelineRecorder(pe_count)
        self.writer = ChromeTraceWriter(out_dir / TRACE_FILE, level)
        if hardware_sha256:  # which hardware configuration the trace is of (trace.json "otherData")
            self.writer.other_data["hardware_sha256"] = hardware_sha256
        self._formatter = ChunkFormatter(self.writer, background)
        self._records_per_chunk = records_per_chunk
        self._lanes: list[_RecordedLane] = []
        self._lane_index: dict[tuple[str, str, tuple[str, ...]], TraceLane] = {}
        self._name_ids: dict[str, int] = {}
        # the chunk being written: its words, argument values that are not numbers, new lanes and names
        self._stream = BytesWriter()
        self._records = 0
        self._extras: list[object] = []
        self._new_lanes: list[LaneEntry] = []
        self._new_names: list[str] = []

    # ------------------------------------------------------------ lanes: one call per record

    def lane(self, component: str, lane: str, keys: tuple[str, ...] = ()) -> TraceLane:
        known = self._lane_index.get((component, lane, keys))
        if known is not None:
            return known
        registered = TraceLane(component, lane, keys, len(self._lanes))
        # the writer keeps every component's instants (ChromeTraceWriter.instant)
        written = lane == _INSTANT or self.writer.keeps(component)
        self._lanes.append(_RecordedLane(len(self._lanes), component, lane, keys, self.timeline, written))
        self._lane_index[(component, lane, keys)] = registered
        return registered

    def slice(self, lane: TraceLane, name: str, start_ps: int, end_ps: int, v0: object = None,
              v1: object = None, v2: object = None, v3: object = None, v4: object = None) -> None:
        state = self._lanes[lane.index]
        timeline = self.timeline
        if end_ps > timeline.end_ps:
            timeline.extend(end_ps)
        if state.bytes_slot != NO_SLOT:
            bins = state.bytes_bins
            if bins is None:
                bins = state.bytes_bins = timeline.bins_of(state.bytes_key)
            timeline.add_to(bins, start_ps, end_ps, _number(state.bytes_slot, v0, v1, v2, v3, v4))
        if state.stall:
            timeline.add(timeline.key("stall", name), start_ps, end_ps, end_ps - start_ps)
        elif state.active_slot != NO_SLOT:
            bins = state.active_bins
            if bins is None:
                bins = state.active_bins = timeline.bins_of(ACTIVE_PES)
            active = _number(state.active_slot, v0, v1, v2, v3, v4)
            timeline.add_to(bins, start_ps, end_ps, active * (end_ps - start_ps))
        if not state.written:
            return
        stream = self._begin(state, name, start_ps)
        write_i64_le(stream, end_ps)
        arity = state.arity
        if arity:
            extras = self._extras
            kinds = put_value(stream, extras, v0)
            if arity > 1:
                kinds |= put_value(stream, extras, v1) << VALUE_BITS
                if arity > 2:
                    kinds |= put_value(stream, extras, v2) << (2 * VALUE_BITS)
                    if arity > 3:
                        kinds |= put_value(stream, extras, v3) << (3 * VALUE_BITS)
                        if arity > 4:
                            kinds |= put_value(stream, extras, v4) << (4 * VALUE_BITS)
            write_i64_le(stream, kinds)
        self._recorded()

    def sample(self, lane: TraceLane, time_ps: int, value: float) -> None:
        """The timeline only: the writer streams no raw counters (ChromeTraceWriter.counter), it gets
        the windowed tracks on close. One call per buffer event."""
        state = self._lanes[lane.index]
        level = state.level
        if level is None:
            level = state.level = self.timeline.level(state.level_key)
        self.timeline.set_level(level, time_ps, value)

    # ------------------------------------------------------------ records with their arguments as a dict

    def span(self, component: str, lane: str, name: str, start_ps: int, end_ps: int,
             args: dict[str, Any] | None = None) -> None:
        self.timeline.span(component, lane, name, start_ps, end_ps, args)
        state = self._lanes[self.lane(component, lane, tuple(args) if args else ()).index]
        if state.written:
            stream = self._begin(state, name, start_ps)
            write_i64_le(stream, end_ps)
            if args:
                put_values(stream, self._extras, list(args.values()))
            self._recorded()

    def counter(self, component: str, name: str, time_ps: int, value: float) -> None:
        self.timeline.counter(component, name, time_ps, value)

    def instant(self, component: str, name: str, time_ps: int, args: dict[str, Any] | None = None) -> None:
        stream = self._begin(self._lanes[self.lane(component, _INSTANT, tuple(args) if args else ()).index],
                             name, time_ps)
        if args:
            put_values(stream, self._extras, list(args.values()))
        self._recorded()

    # ------------------------------------------------------------ output

    def _begin(self, state: _RecordedLane, name: str, start_ps: int) -> BytesWriter:
        """A written record's header and start; the stream to write the rest to."""
        if not state.pid:  # the lane's first written record: its component's pid, as the writer numbers them
            state.pid = self.writer.pid_of(state.component)
            self._new_lanes.append((state.index, state.component, state.lane, state.keys, state.instant, state.pid))
        if name is not state.name:
            state.name = name
            state.name_id = self._name_id(name)
        stream = self._stream
        write_i64_le(stream, state.index | state.name_id << NAME_SHIFT)
        write_i64_le(stream, start_ps)
        return stream

    def _name_id(self, name: str) -> int:
        known = self._name_ids.get(name)
        if known is None:
            known = self._name_ids[name] = len(self._name_ids)
            self._new_names.append(name)
        return known

    def _recorded(self) -> None:
        self._records += 1
        if self._records >= self._records_per_chunk:
            self._write_chunk()

    def _write_chunk(self) -> None:
        """Hand the records so far to the formatter; record on into a new chunk."""
        if self._records:
            self._formatter.submit((self._new_lanes, self._new_names, self._extras, self._stream.getvalue()),
                                   self._records)
            self._stream.truncate(0)  # the buffer stays allocated: no copy and no new pages as it grows again
            self._records = 0
            self._extras, self._new_lanes, self._new_names = [], [], []

    def close(self) -> None:
        """The timeline and the counter tracks while the formatter finishes, then its lines, the
        tracks and the names."""
        self._write_chunk()
        self.timeline.close()
        write_atomic(self.out_dir / TIMELINE_FILE, self.timeline.csv_text())
        tracks = counter_track_lines(self.writer, self.timeline)
        self._formatter.finish()
        self.writer.write_lines(tracks)
        self.writer.close()

    def abort(self) -> None:
        self._formatter.abort()
        self.writer.abort()


def counter_track_lines(writer: ChromeTraceWriter, timeline: TimelineRecorder) -> list[str]:
    """One counter value per window (a step function), and zero after the end of the run."""
    windows = timeline.windows()
    tracks = []
    for key in sorted(timeline.series):
        if key.startswith("bytes."):
            tracks.append((key, key[6:], "bandwidth", "GB/s", 1e3))  # bytes per ps -> GB/s
        elif key == "active_pes":
            tracks.append((key, "pe_array", "active PEs", "PEs", 1.0))
        elif key.startswith("buffer."):
            component, name = key.rsplit(".", 1)
            tracks.append((key, component, name, "bytes", 1.0))
    times = [fixed_us(start) for start, _ in windows]  # every track's
    lines = []
    for key, component, name, unit, scale in tracks:
        head, middle = writer.counter_parts(component, name, unit)
        bins = timeline.series[key]
        for index, (start, end) in enumerate(windows):
            value = (bins[index] if index < len(bins) else 0.0) / (end - start) * scale
            lines.append(f"{head}{times[index]}{middle}{value!r}}}}}")
        if windows:
            lines.append(writer.counter_line(component, name, windows[-1][1], unit, 0.0))
    return lines
