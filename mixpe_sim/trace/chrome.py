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
from typing import Any, Final, Literal

from librt.strings import StringWriter

from mixpe_sim._version import __version__
from mixpe_sim.report.output import publish
from mixpe_sim.trace.sink import TraceSink

LINES_PER_WRITE: Final = 4096  # events joined into one file write (one write per event was 15 % of the writer)
DURATIONS_CACHED: Final = 1 << 16  # formatted slice durations kept (tile kinds repeat; bounded for long runs)
TraceLevel = Literal["layer", "tile", "transaction"]
TRACE_LEVELS: tuple[TraceLevel, ...] = ("layer", "tile", "transaction")
# processes listed top to bottom in the viewer
COMPONENT_ORDER: Final = ("controller", "pe_array", "dequant", "vector_unit", "dma.weight", "dma.activation",
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


def write_us(out: StringWriter, time_ps: int) -> None:
    """`fixed_us`, written digit by digit (no string made): the same text."""
    whole = time_ps // PS_PER_US
    frac = time_ps - whole * PS_PER_US
    out.write(str(whole))
    out.append(46)  # "."
    if not frac:
        out.append(48)  # "0"
        return
    divisor = PS_PER_US // 10
    while frac:  # the fraction's digits up to its last non-zero one
        digit = frac // divisor
        out.append(48 + digit)
        frac -= digit * divisor
        divisor //= 10


PS_PER_US: Final = 1_000_000
_POWERS_OF_TEN: Final = (1, 10, 100, 1_000, 10_000, 100_000, 1_000_000)


def _keeps(level: TraceLevel, component: str) -> bool:
    if level == "layer":
        return component == "controller"
    return level == "transaction" or component != "dram"


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
        self._lanes: dict[tuple[str, str], Lane | None] = {}  # None: the level drops the component
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
            state = self._lanes[(component, lane)] = Lane(self.pid_of(component), component, lane) \
                if _keeps(self.level, component) else None
        if state is None:
            return
        tid = self.sub_lane(state, start_ps, end_ps)
        name_json = self._name_json(name)
        dur = self._duration_us(end_ps - start_ps)
        self._emit(f'{{"ph":"X","name":{name_json},"pid":{state.pid},"tid":{tid},'
                   f'"ts":{fixed_us(start_ps)},"dur":{dur}{_args(args) if args else ""}}}')

    def keeps(self, component: str) -> bool:
        """Whether this trace level writes the component's records."""
        return _keeps(self.level, component)

    def lane_state(self, component: str, lane: str, pid: int) -> Lane:
        """The sub-lanes of (component, lane), whose pid the recording chose (for text made elsewhere)."""
        state = self._lanes.get((component, lane))
        if state is None:
            state = self._lanes[(component, lane)] = Lane(pid, component, lane)
        return state

    def sub_lane(self, state: Lane, start_ps: int, end_ps: int) -> int:
        """First sub-lane whose slices all end by `start`: slices on one tid never overlap."""
        ends = state.ends
        index = 0
        while index < len(ends) and start_ps < ends[index]:
            index += 1
        if index == len(ends):
            ends.append(end_ps)
            self._tids[(state.component, state.lane, index)] = len(self._tids) + 1
            state.tids.append(len(self._tids))
        elif end_ps > ends[index]:
            ends[index] = end_ps
        return state.tids[index]

    def tid_table(self) -> list[tuple[tuple[str, str, int], int]]:
        """Every sub-lane's tid, in the order they were made (to hand to the process that closes)."""
        return list(self._tids.items())

    def adopt_tids(self, table: list[tuple[tuple[str, str, int], int]]) -> None:
        """The sub-lanes another process made (`tid_table`), named on close."""
        for key, tid in table:
            self._tids[key] = tid

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
        self._emit(f'{{"ph":"i","s":"g","name":{json.dumps(name)},"pid":{self.pid_of(component)},"tid":0,'
                   f'"ts":{fixed_us(time_ps)}{_args(args)}}}')

    def write_counter(self, component: str, name: str, time_ps: int, values: dict[str, float]) -> None:
        self._emit(f'{{"ph":"C","name":{json.dumps(name)},"pid":{self.pid_of(component)},'
                   f'"ts":{fixed_us(time_ps)},"args":{json.dumps(values, separators=(",", ":"))}}}')

    def counter_line(self, component: str, name: str, time_ps: int, unit: str, value: float) -> str:
        """The line `write_counter` writes for one finite value, made without the JSON encoder."""
        head, middle = self.counter_parts(component, name, unit)
        return f"{head}{fixed_us(time_ps)}{middle}{value!r}}}}}"

    def counter_parts(self, component: str, name: str, unit: str) -> tuple[str, str]:
        """A counter line's text before its time and between its time and its value."""
        return (f'{{"ph":"C","name":{self._name_json(name)},"pid":{self.pid_of(component)},"ts":',
                f',"args":{{{self._name_json(unit)}:')

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

    def pid_of(self, component: str) -> int:
        """The pid of a component: numbered in the order they first appear."""
        pid = self._pids.get(component)
        if pid is None:
            pid = self._pids[component] = len(self._pids) + 1
        return pid

    def _write_names(self) -> None:
        for component, pid in self._pids.items():
            order = COMPONENT_ORDER.index(component) if component in COMPONENT_ORDER else len(COMPONENT_ORDER)
            self._emit(f'{{"ph":"M","name":"process_name","pid":{pid},"args":{{"name":{json.dumps(component)}}}}}')
            self._emit(f'{{"ph":"M","name":"process_sort_index","pid":{pid},"args":{{"sort_index":{order}}}}}')
        for (component, lane, index), tid in self._tids.items():
            label = lane if index == 0 else f"{lane} {index + 1}"
            self._emit(f'{{"ph":"M","name":"thread_name","pid":{self.pid_of(component)},"tid":{tid},'
                       f'"args":{{"name":{json.dumps(label)}}}}}')


class Lane:
    """A (component, lane) pair of the trace: its pid, and per sub-lane the end of its last slice and
    its tid."""

    __slots__ = ("component", "ends", "lane", "pid", "tids")

    def __init__(self, pid: int, component: str, lane: str) -> None:
        self.pid, self.component, self.lane = pid, component, lane
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
