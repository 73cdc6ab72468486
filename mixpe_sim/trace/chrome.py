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

LINES_PER_WRITE = 4096  # events joined into one file write (one write per event was 15 % of the writer)
DURATIONS_CACHED = 1 << 16  # formatted slice durations kept (tile kinds repeat; bounded for long runs)
TraceLevel = Literal["layer", "tile", "transaction"]
TRACE_LEVELS: tuple[TraceLevel, ...] = ("layer", "tile", "transaction")
# processes listed top to bottom in the viewer
COMPONENT_ORDER = ("controller", "pe_array", "dequant", "vector_unit", "dma.weight", "dma.activation",
                   "dma.store", "buffer.weight", "buffer.activation", "buffer.output", "buffer.scale", "dram")


def fixed_us(time_ps: int) -> str:
    """Picoseconds as an exact decimal number of microseconds, without trailing zeros (never 1e-05)."""
    whole, frac = divmod(time_ps, 1_000_000)
    if not frac:
        return f"{whole}.0"
    # six digits, zero-padded, by the digits of frac + 10^6: native string operations when compiled
    # (0.13 us a call against 0.23 us for printf formatting, which compiled code cannot specialise)
    return f"{whole}.{str(frac + 1_000_000)[1:].rstrip('0')}"


def _keeps(level: TraceLevel, component: str) -> bool:
    if level == "layer":
        return component == "controller"
    return level == "transaction" or component != "dram"


class ChromeTraceWriter:
    enabled = True

    def __init__(self, path: Path, level: TraceLevel = "tile") -> None:
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
        name_json = self._names.get(name)
        if name_json is None:
            name_json = self._names[name] = json.dumps(name)
        duration = end_ps - start_ps
        dur = self._durations.get(duration)
        if dur is None:
            dur = fixed_us(duration)
            if len(self._durations) < DURATIONS_CACHED:
                self._durations[duration] = dur
        self._emit(f'{{"ph":"X","name":{name_json},"pid":{state.pid},"tid":{tid},'
                   f'"ts":{fixed_us(start_ps)},"dur":{dur}{_args(args) if args else ""}}}')

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
            self._file.write((",\n" if self._written_any else "") + ",\n".join(self._pending))
            self._written_any = True
            self._pending.clear()

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

