"""`--trace`: one sink that writes trace.json and integrates the timeline, written together on close.

Records are kept as plain values per lane (`LaneColumns`: name, times, tid, arguments) and turned into
text a chunk at a time beside the simulation (trace/background.py): the same bytes the streaming
writer makes record by record (`ChromeTraceWriter.span`), off the simulation's path. The timeline
integrates each record as it arrives, and the sub-lane (tid) of each slice is chosen then, in arrival
order, as the streaming writer chooses it.

Counter tracks in the trace come from the timeline windows (DRAM and DMA bandwidth, buffer occupancy,
active PEs), so integrating a bandwidth counter over time gives back exactly the bytes moved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mixpe_sim.report.files import csv_text
from mixpe_sim.report.output import write_atomic
from mixpe_sim.trace.background import ChunkFormatter
from mixpe_sim.trace.chrome import ChromeTraceWriter, LaneColumns, TraceLevel
from mixpe_sim.trace.sink import TraceLane, TraceSink
from mixpe_sim.trace.timeline import PE_ARRAY, Level, TimelineRecorder

TRACE_FILE = "trace.json"
TIMELINE_FILE = "timeline.csv"
RECORDS_PER_CHUNK = 1 << 14  # records handed to the formatter together (the last one is the wait on close)
NO_SLOT = -1
_INSTANT = "\0instant"  # the lane key of a component's instants (not a lane name a component can use)


class _RecordedLane:
    """What the recording does with a lane's records: which timeline series they feed, and their
    columns when the trace level writes them."""

    __slots__ = ("active_slot", "bytes_bins", "bytes_key", "bytes_slot", "columns", "level", "level_key",
                 "stall", "written")

    def __init__(self, component: str, lane: str, keys: tuple[str, ...], timeline: TimelineRecorder,
                 written: bool) -> None:
        self.written = written
        self.columns = LaneColumns(component, lane, keys, instant=lane == _INSTANT)
        self.bytes_slot = keys.index("bytes") if "bytes" in keys else NO_SLOT
        self.bytes_key = timeline.key("bytes", component)
        self.bytes_bins: list[float] | None = None  # the series, once it has an amount
        # as TimelineRecorder.span: the PE array's stalls by cause, else its active PEs
        self.stall = component == PE_ARRAY and lane == "stall"
        self.active_slot = keys.index("active_pes") if component == PE_ARRAY and not self.stall \
            and "active_pes" in keys else NO_SLOT
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
        self._columns: list[LaneColumns] = []
        self._lane_index: dict[tuple[str, str, tuple[str, ...]], TraceLane] = {}
        self._order: list[int] = []  # the lane of each written record not yet turned into text

    # ------------------------------------------------------------ lanes: one call per record

    def lane(self, component: str, lane: str, keys: tuple[str, ...] = ()) -> TraceLane:
        known = self._lane_index.get((component, lane, keys))
        if known is not None:
            return known
        registered = TraceLane(component, lane, keys, len(self._lanes))
        # the writer keeps every component's instants (ChromeTraceWriter.instant)
        written = lane == _INSTANT or self.writer.keeps(component)
        state = _RecordedLane(component, lane, keys, self.timeline, written)
        self._lanes.append(state)
        self._columns.append(state.columns)
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
            active = _number(state.active_slot, v0, v1, v2, v3, v4)
            timeline.add("active_pes", start_ps, end_ps, active * (end_ps - start_ps))
        if not state.written:
            return
        columns = state.columns
        columns.names.append(name)
        columns.starts.append(start_ps)
        columns.ends.append(end_ps)
        columns.tids.append(self.writer.column_tid(columns, start_ps, end_ps))
        arity = len(columns.keys)
        if arity:
            values = columns.values
            values.append(v0)
            if arity > 1:
                values.append(v1)
                if arity > 2:
                    values.append(v2)
                    if arity > 3:
                        values.append(v3)
                        if arity > 4:
                            values.append(v4)
        self._written(lane.index)

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
        index = self.lane(component, lane, tuple(args) if args else ()).index
        state = self._lanes[index]
        if state.written:
            columns = state.columns
            columns.names.append(name)
            columns.starts.append(start_ps)
            columns.ends.append(end_ps)
            columns.tids.append(self.writer.column_tid(columns, start_ps, end_ps))
            if args:
                columns.values.extend(args.values())
            self._written(index)

    def counter(self, component: str, name: str, time_ps: int, value: float) -> None:
        self.timeline.counter(component, name, time_ps, value)

    def instant(self, component: str, name: str, time_ps: int, args: dict[str, Any] | None = None) -> None:
        index = self.lane(component, _INSTANT, tuple(args) if args else ()).index
        columns = self._lanes[index].columns
        self.writer.column_pid(columns)
        columns.names.append(name)
        columns.starts.append(time_ps)
        if args:
            columns.values.extend(args.values())
        self._written(index)

    # ------------------------------------------------------------ output

    def _written(self, index: int) -> None:
        order = self._order
        order.append(index)
        if len(order) >= self._records_per_chunk:
            self._write_chunk()

    def _write_chunk(self) -> None:
        """Hand the records so far to the formatter; record on into new columns."""
        self._formatter.submit(self._order, [columns.data() for columns in self._columns])
        self._order = []
        for state in self._lanes:
            state.columns = state.columns.successor()
        self._columns = [state.columns for state in self._lanes]

    def close(self) -> None:
        """The timeline and the counter tracks while the formatter finishes, then its lines, the
        tracks and the names."""
        self._write_chunk()
        self.timeline.close()
        write_atomic(self.out_dir / TIMELINE_FILE, csv_text(self.timeline.rows()))
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
    lines = []
    for key, component, name, unit, scale in tracks:
        for index, (start, end) in enumerate(windows):
            lines.append(writer.counter_line(component, name, start, unit,
                                             timeline.value(key, index) / (end - start) * scale))
        if windows:
            lines.append(writer.counter_line(component, name, windows[-1][1], unit, 0.0))
    return lines
