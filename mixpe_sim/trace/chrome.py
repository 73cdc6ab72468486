"""Streaming Chrome Trace Event JSON writer (loads in ui.perfetto.dev and chrome://tracing).

One process (pid) per component, one thread (tid) per lane. Slices that would overlap on a lane are
moved to a numbered sub-lane ("load", "load 2", ...), so no tid ever holds partly overlapping slices.
Times are written as fixed-point microseconds with six decimals (exact picoseconds, never `1e-05`).
Events go to a temporary file as they arrive; `close()` renames it into place, `abort()` removes it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

from mixpe_sim._version import __version__
from mixpe_sim.report.output import publish
from mixpe_sim.trace.sink import TraceSink

LINES_PER_WRITE = 4096  # events joined into one file write (one write per event was 15 % of the writer)
DURATIONS_CACHED = 1 << 16  # formatted slice durations kept (tile kinds repeat; bounded for long runs)
TraceLevel = Literal["layer", "tile", "transaction"]
TRACE_LEVELS: tuple[TraceLevel, ...] = ("layer", "tile", "transaction")
# processes listed top to bottom in the viewer
COMPONENT_ORDER = ("controller", "pe_array", "dequant", "vector_unit", "dma.weight", "dma.activation",
                   "dma.store", "buffer.weight", "buffer.activation", "buffer.output", "buffer.scale", "dram")


def fixed_us(time_ps: int) -> str:
    """Picoseconds as an exact decimal number of microseconds, without trailing zeros (never 1e-05)."""
    whole = time_ps // PS_PER_US  # floor, as divmod: the fraction is never negative
    frac = time_ps - whole * PS_PER_US
    if not frac:
        return f"{whole}.0"
    # the fraction's digits without its trailing zeros, zero-padded by the digits of frac + 10^digits:
    # native integer and string operations when compiled (printf formatting, divmod and rstrip are not)
    digits = 6
    while frac % 10 == 0:
        frac //= 10
        digits -= 1
    return f"{whole}.{str(frac + _POWERS_OF_TEN[digits])[1:]}"


PS_PER_US = 1_000_000
_POWERS_OF_TEN = (1, 10, 100, 1_000, 10_000, 100_000, 1_000_000)


def _keeps(level: TraceLevel, component: str) -> bool:
    if level == "layer":
        return component == "controller"
    return level == "transaction" or component != "dram"


# a lane's records as plain values: instant or slice, pid, argument keys, names, start (instant: time) and
# end times, tids, argument values (len(keys) per record)
ColumnsData = tuple[bool, int, tuple[str, ...], list[str], list[int], list[int], list[int], list[object]]


class LaneColumns:
    """The records of one (component, lane) with fixed argument keys not yet written, as columns: a
    slice lane (name, start, end, tid, values) or an instant lane (name, time, values). The writer's
    state of the lane (pid, sub-lanes) is taken at its first record, in arrival order as `span` does."""

    __slots__ = ("component", "ends", "instant", "keys", "lane", "names", "pid", "starts", "state", "tids",
                 "values")

    def __init__(self, component: str, lane: str, keys: tuple[str, ...], instant: bool = False) -> None:
        self.component, self.lane, self.keys, self.instant = component, lane, keys, instant
        self.state: _Lane | None = None
        self.pid = 0  # the component's pid, taken at the lane's first record
        self.names: list[str] = []
        self.starts: list[int] = []
        self.ends: list[int] = []  # slices only
        self.tids: list[int] = []  # slices only
        self.values: list[object] = []  # len(keys) per record, in key order

    def data(self) -> ColumnsData:
        """The records as plain values: what `ChromeTraceWriter.format_columns` reads."""
        return (self.instant, self.pid, self.keys, self.names, self.starts, self.ends, self.tids, self.values)

    def successor(self) -> LaneColumns:
        """Empty columns for the lane's next records (these ones go to a writer as they are)."""
        after = LaneColumns(self.component, self.lane, self.keys, self.instant)
        after.state, after.pid = self.state, self.pid
        return after


class ChromeTraceWriter(TraceSink):
    def __init__(self, path: Path, level: TraceLevel = "tile") -> None:
        self.enabled = True
        self.path = path
        self.level = level
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        self._file = os.fdopen(fd, "w")
        self._file.write('{"displayTimeUnit":"ns","traceEvents":[\n')
        self._pending: list[str] = []  # events not yet written (LINES_PER_WRITE at a time)
        self._written_any = False
        self._pids: dict[str, int] = {}
        self._lanes: dict[tuple[str, str], _Lane | None] = {}  # None: the level drops the component
        self._tids: dict[tuple[str, str, int], int] = {}
        self._names: dict[str, str] = {}  # slice name -> its JSON string
        self._durations: dict[int, str] = {}  # tiles repeat: few distinct durations (transfers: many)
        self.events_written = 0
        self.other_data: dict[str, Any] = {"tool": "mixpe-sim", "version": __version__}

    # ------------------------------------------------------------ sink interface

    def span(self, component: str, lane: str, name: str, start_ps: int, end_ps: int,
             args: dict[str, Any] | None = None) -> None:
        """One slice; called per tile and per transfer, so everything that repeats is looked up."""
        try:
            state = self._lanes[(component, lane)]
        except KeyError:
            state = self._lanes[(component, lane)] = _Lane(self._pid(component)) \
                if _keeps(self.level, component) else None
        if state is None:
            return
        tid = self._tid(component, lane, state, start_ps, end_ps)
        name_json = self._name_json(name)
        dur = self._duration_us(end_ps - start_ps)
        self._emit(f'{{"ph":"X","name":{name_json},"pid":{state.pid},"tid":{tid},'
                   f'"ts":{fixed_us(start_ps)},"dur":{dur}{_args(args) if args else ""}}}')

    def keeps(self, component: str) -> bool:
        """Whether this trace level writes the component's records."""
        return _keeps(self.level, component)

    def column_tid(self, columns: LaneColumns, start_ps: int, end_ps: int) -> int:
        """The tid of a slice recorded in columns (called in arrival order, as `span` would be)."""
        state = columns.state
        if state is None:
            state = columns.state = self._lane_state(columns.component, columns.lane)
            columns.pid = state.pid
        ends = state.ends
        if ends and start_ps >= ends[0]:  # the first sub-lane is free: the common case, no loop
            if end_ps > ends[0]:
                ends[0] = end_ps
            return state.tids[0]
        return self._tid(columns.component, columns.lane, state, start_ps, end_ps)

    def column_pid(self, columns: LaneColumns) -> int:
        """The pid of an instant recorded in columns (called in arrival order)."""
        if not columns.pid:
            columns.pid = self._pid(columns.component)
        return columns.pid

    def format_columns(self, order: list[int], lanes: list[ColumnsData]) -> str:
        """The lines `span` and `instant` would have written for these records, in arrival order
        (`order`: the lane of each record; `lanes`: `LaneColumns.data()`), joined by ',\n'."""
        lane_lines = [self._lane_lines(lane) for lane in lanes]
        cursors = [0] * len(lanes)
        lines: list[str] = []
        for index in order:
            at = cursors[index]
            cursors[index] = at + 1
            lines.append(lane_lines[index][at])
        return ",\n".join(lines)

    def _lane_lines(self, lane: ColumnsData) -> list[str]:
        """One lane's lines in its order. A lane's records mostly share their name and tid, and a tile
        lane's records their duration and arguments: the text before and after the time is reused."""
        instant, pid, keys, names, starts, ends, tids, values = lane
        arity = len(keys)
        tails = _TailCache(keys)
        lines: list[str] = []
        last_name: str | None = None
        last_tid = -1
        head = ""
        for at in range(len(names)):
            name = names[at]
            start = starts[at]
            if instant:
                if name is not last_name:
                    head = f'{{"ph":"i","s":"g","name":{self._name_json(name)},"pid":{pid},"tid":0,"ts":'
                    last_name = name
                lines.append(f"{head}{fixed_us(start)}{tails.text(-1, values, at * arity)}")
                continue
            tid = tids[at]
            if name is not last_name or tid != last_tid:
                head = f'{{"ph":"X","name":{self._name_json(name)},"pid":{pid},"tid":{tid},"ts":'
                last_name, last_tid = name, tid
            lines.append(f"{head}{fixed_us(start)}{tails.text(ends[at] - start, values, at * arity)}")
        return lines

    def write_formatted(self, text: str, records: int) -> None:
        """Lines made by `format_columns`, after everything written so far."""
        if text:
            self._flush()
            self._write_text(text)
            self.events_written += records

    def hand_over(self) -> tuple[str, bool, int]:
        """Everything so far on disk, for another process to append lines to: the file, whether lines
        are there already (the first appended line then follows a ',\n') and where they end."""
        self._flush()
        self._file.flush()
        return self._tmp, self._written_any, self._file.tell()

    def take_back(self, records: int) -> None:
        """Another process appended `records` lines: write on after them."""
        self._file.seek(0, os.SEEK_END)
        if records:
            self._written_any = True
            self.events_written += records

    def cut_back(self, offset: int) -> None:
        """Drop what another process appended after `offset` (from `hand_over`)."""
        self._file.seek(offset)
        self._file.truncate()

    def counter(self, component: str, name: str, time_ps: int, value: float) -> None:
        """Raw level counters are not streamed: the windowed counter tracks (`write_counters`) carry
        buffer occupancy, and one value per buffer event would dominate the file."""
        return None

    def instant(self, component: str, name: str, time_ps: int, args: dict[str, Any] | None = None) -> None:
        self._emit(f'{{"ph":"i","s":"g","name":{json.dumps(name)},"pid":{self._pid(component)},"tid":0,'
                   f'"ts":{fixed_us(time_ps)}{_args(args)}}}')

    def write_counter(self, component: str, name: str, time_ps: int, values: dict[str, float]) -> None:
        self._emit(f'{{"ph":"C","name":{json.dumps(name)},"pid":{self._pid(component)},'
                   f'"ts":{fixed_us(time_ps)},"args":{json.dumps(values, separators=(",", ":"))}}}')

    def counter_line(self, component: str, name: str, time_ps: int, unit: str, value: float) -> str:
        """The line `write_counter` writes for one finite value, made without the JSON encoder."""
        return (f'{{"ph":"C","name":{self._name_json(name)},"pid":{self._pid(component)},'
                f'"ts":{fixed_us(time_ps)},"args":{{{self._name_json(unit)}:{value!r}}}}}')

    def write_lines(self, lines: list[str]) -> None:
        for line in lines:
            self._emit(line)

    def close(self) -> None:
        if self._file.closed:
            return
        self._write_names()
        self._flush()
        self._file.write(f'\n],"otherData":{json.dumps(self.other_data, separators=(",", ":"))}}}\n')
        self._file.close()
        publish(self._tmp, self.path)

    def abort(self) -> None:
        """Drop the partial file: a failed run leaves no half-written trace behind."""
        if not self._file.closed:
            self._file.close()
        Path(self._tmp).unlink(missing_ok=True)

    # ------------------------------------------------------------ internals

    def _emit(self, text: str) -> None:
        pending = self._pending
        pending.append(text)
        if len(pending) >= LINES_PER_WRITE:
            self._flush()
        self.events_written += 1

    def _flush(self) -> None:
        if self._pending:
            self._write_text(",\n".join(self._pending))
            self._pending.clear()

    def _write_text(self, text: str) -> None:
        """Lines already joined, after those written before."""
        self._file.write((",\n" if self._written_any else "") + text)
        self._written_any = True

    def _name_json(self, name: str) -> str:
        name_json = self._names.get(name)
        if name_json is None:
            name_json = self._names[name] = json.dumps(name)
        return name_json

    def _duration_us(self, duration_ps: int) -> str:
        dur = self._durations.get(duration_ps)
        if dur is None:
            dur = fixed_us(duration_ps)
            if len(self._durations) < DURATIONS_CACHED:
                self._durations[duration_ps] = dur
        return dur

    def _lane_state(self, component: str, lane: str) -> _Lane:
        state = self._lanes.get((component, lane))
        if state is None:
            state = self._lanes[(component, lane)] = _Lane(self._pid(component))
        return state

    def _pid(self, component: str) -> int:
        pid = self._pids.get(component)
        if pid is None:
            pid = self._pids[component] = len(self._pids) + 1
        return pid

    def _tid(self, component: str, lane: str, state: _Lane, start_ps: int, end_ps: int) -> int:
        """First sub-lane whose slices all end by `start`: slices on one tid never overlap."""
        ends = state.ends
        index = 0
        while index < len(ends) and start_ps < ends[index]:
            index += 1
        if index == len(ends):
            ends.append(end_ps)
            self._tids[(component, lane, index)] = len(self._tids) + 1
            state.tids.append(len(self._tids))
        elif end_ps > ends[index]:
            ends[index] = end_ps
        return state.tids[index]

    def _write_names(self) -> None:
        for component, pid in self._pids.items():
            order = COMPONENT_ORDER.index(component) if component in COMPONENT_ORDER else len(COMPONENT_ORDER)
            self._emit(f'{{"ph":"M","name":"process_name","pid":{pid},"args":{{"name":{json.dumps(component)}}}}}')
            self._emit(f'{{"ph":"M","name":"process_sort_index","pid":{pid},"args":{{"sort_index":{order}}}}}')
        for (component, lane, index), tid in self._tids.items():
            label = lane if index == 0 else f"{lane} {index + 1}"
            self._emit(f'{{"ph":"M","name":"thread_name","pid":{self._pid(component)},"tid":{tid},'
                       f'"args":{{"name":{json.dumps(label)}}}}}')


class _Lane:
    """A (component, lane) pair of the trace: its pid, and per sub-lane the end of its last slice and
    its tid."""

    __slots__ = ("ends", "pid", "tids")

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.ends: list[int] = []
        self.tids: list[int] = []


_NUMBERS = (int, float)  # written as Python prints them (bool is not one of them: JSON true/false)


_ARG_TEMPLATES: dict[tuple[str, ...], str] = {}  # keys of an args dict -> its JSON with %s for each value


def _args(args: dict[str, Any] | None) -> str:
    """Compact JSON for the flat argument dicts components pass. A call site passes the same keys every
    time: all-number values fill a cached template (Python prints ints and floats as JSON does)."""
    if not args:
        return ""
    values = tuple(args.values())
    for value in values:
        if type(value) not in _NUMBERS:
            body = ",".join([f'"{key}":{value}' if type(value) in _NUMBERS else f'"{key}":{json.dumps(value)}'
                             for key, value in args.items()])
            return f',"args":{{{body}}}'
    keys = tuple(args)
    template = _ARG_TEMPLATES.get(keys)
    if template is None:
        template = _ARG_TEMPLATES[keys] = ',"args":{' + ",".join(f'"{key}":%s' for key in keys) + "}"
    return template % values



TAIL_PROBE_RECORDS = 512  # a lane whose tails repeat less than half the time after these is not cached


class _TailCache:
    """The text after a record's time: `,"dur":..` (slices), its arguments as `_args` writes them,
    the closing brace. Kept per distinct duration and values while most records repeat one (tiles);
    on a lane where they do not (transfers: token and address), it stops looking after a while."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.heads = [(',"args":{' if index == 0 else ",") + f'"{key}":' for index, key in enumerate(keys)]
        self.known: dict[tuple[object, ...], str] = {}
        self.lookups = 0
        self.misses = 0
        self.caching = True

    def text(self, duration_ps: int, values: list[object], first: int) -> str:
        """`duration_ps` -1: an instant (no duration)."""
        if not self.caching:
            return self._make(duration_ps, values, first)
        record = values[first:first + len(self.heads)]
        # with the types: 1, 1.0 and True are equal keys but print as 1, 1.0 and true
        key = (duration_ps, *record, *map(type, record))
        try:
            text = self.known.get(key)
        except TypeError:  # a value that cannot be a key (a list): this lane is not cached
            self.caching = False
            return self._make(duration_ps, values, first)
        self.lookups += 1
        if text is None:
            text = self.known[key] = self._make(duration_ps, values, first)
            self.misses += 1
            if self.lookups >= TAIL_PROBE_RECORDS and self.misses * 2 > self.lookups:
                self.caching = False
                self.known.clear()
        return text

    def _make(self, duration_ps: int, values: list[object], first: int) -> str:
        parts = [] if duration_ps < 0 else [f',"dur":{fixed_us(duration_ps)}']
        heads = self.heads
        for index in range(len(heads)):
            value = values[first + index]
            parts.append(heads[index])
            parts.append(str(value) if type(value) is int or type(value) is float else json.dumps(value))
        parts.append("}}" if heads else "}")
        return "".join(parts)
