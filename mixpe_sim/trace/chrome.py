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

TraceLevel = Literal["layer", "tile", "transaction"]
TRACE_LEVELS: tuple[TraceLevel, ...] = ("layer", "tile", "transaction")
# processes listed top to bottom in the viewer
COMPONENT_ORDER = ("controller", "pe_array", "dequant", "vector_unit", "dma.weight", "dma.activation",
                   "dma.store", "buffer.weight", "buffer.activation", "buffer.output", "buffer.scale", "dram")


def fixed_us(time_ps: int) -> str:
    """Picoseconds as an exact decimal number of microseconds, without trailing zeros (never 1e-05)."""
    whole, frac = divmod(time_ps, 1_000_000)
    return f"{whole}.{f'{frac:06d}'.rstrip('0') or '0'}"


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
        self._first = True
        self._pids: dict[str, int] = {}
        self._lanes: dict[tuple[str, str], list[int]] = {}  # sub-lane -> end of its last slice
        self._tids: dict[tuple[str, str, int], int] = {}
        self.events_written = 0
        self.other_data: dict[str, Any] = {"tool": "mixpe-sim", "version": __version__}

    # ------------------------------------------------------------ sink interface

    def span(self, component: str, lane: str, name: str, start_ps: int, end_ps: int,
             args: dict[str, Any] | None = None) -> None:
        if not _keeps(self.level, component):
            return
        tid = self._tid(component, lane, start_ps, end_ps)
        self._emit(f'{{"ph":"X","name":{json.dumps(name)},"pid":{self._pid(component)},"tid":{tid},'
                   f'"ts":{fixed_us(start_ps)},"dur":{fixed_us(end_ps - start_ps)}{_args(args)}}}')

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
        if not self._first:
            self._file.write(",\n")
        self._first = False
        self._file.write(text)
        self.events_written += 1

    def _pid(self, component: str) -> int:
        pid = self._pids.get(component)
        if pid is None:
            pid = self._pids[component] = len(self._pids) + 1
        return pid

    def _tid(self, component: str, lane: str, start_ps: int, end_ps: int) -> int:
        """First sub-lane whose slices all end by `start`: slices on one tid never overlap."""
        ends = self._lanes.setdefault((component, lane), [])
        index = next((i for i, end in enumerate(ends) if start_ps >= end), len(ends))
        if index == len(ends):
            ends.append(end_ps)
        ends[index] = max(ends[index], end_ps)
        key = (component, lane, index)
        tid = self._tids.get(key)
        if tid is None:
            tid = self._tids[key] = len(self._tids) + 1
        return tid

    def _write_names(self) -> None:
        for component, pid in self._pids.items():
            order = COMPONENT_ORDER.index(component) if component in COMPONENT_ORDER else len(COMPONENT_ORDER)
            self._emit(f'{{"ph":"M","name":"process_name","pid":{pid},"args":{{"name":{json.dumps(component)}}}}}')
            self._emit(f'{{"ph":"M","name":"process_sort_index","pid":{pid},"args":{{"sort_index":{order}}}}}')
        for (component, lane, index), tid in self._tids.items():
            label = lane if index == 0 else f"{lane} {index + 1}"
            self._emit(f'{{"ph":"M","name":"thread_name","pid":{self._pid(component)},"tid":{tid},'
                       f'"args":{{"name":{json.dumps(label)}}}}}')


def _args(args: dict[str, Any] | None) -> str:
    """Compact JSON for the flat argument dicts components pass (numbers written directly: faster)."""
    if not args:
        return ""
    body = ",".join(f'"{key}":{value}' if type(value) in (int, float) else f'"{key}":{json.dumps(value)}'
                    for key, value in args.items())
    return f',"args":{{{body}}}'

