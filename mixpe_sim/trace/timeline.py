"""Windowed timelines: bytes moved, stall time, active PEs and buffer occupancy per time window.

A trace sink that integrates what the components report into fixed-width windows. The window starts
at 10 ns and doubles (merging neighbours, which is exact for integrals) whenever the run outgrows
MAX_WINDOWS, so memory stays bounded and the totals over all windows are exactly what was reported.
"""

from __future__ import annotations

from typing import Any

from mixpe_sim.trace.sink import TraceSink
from mixpe_sim.units import PS_PER_S

INITIAL_WINDOW_PS = 10_000
MAX_WINDOWS = 2000
PE_ARRAY = "pe_array"
NEVER = -1  # a level counter's time before its first value


class Level:
    """A level counter: its last value and since when (integrated when it changes)."""

    __slots__ = ("bins", "key", "time_ps", "value")

    def __init__(self, key: str) -> None:
        self.key = key
        self.time_ps = NEVER
        self.value = 0.0
        self.bins: list[float] | None = None


class TimelineRecorder(TraceSink):
    """Integrals per window. Series keys:

    - `bytes.<component>`: bytes moved by spans carrying a "bytes" arg, spread evenly over the span
      (dram, dma.weight, dma.activation, dma.store);
    - `stall.<cause>`: picoseconds the PE array spent stalled on that cause;
    - `active_pes`: PE-picoseconds of useful work (tile spans' "active_pes" x duration);
    - `<component>.<counter>`: time integral of a level counter (buffer occupancy, byte-ps).
    """

    def __init__(self, pe_count: int) -> None:
        self.enabled = True
        self.pe_count = pe_count
        self.window_ps = INITIAL_WINDOW_PS
        self.series: dict[str, list[float]] = {}
        self.end_ps = 0
        self._levels: dict[str, Level] = {}
        self._keys: dict[tuple[str, str], str] = {}  # (prefix, name) -> series key: spans come per tile

    # ------------------------------------------------------------ sink interface

    def span(self, component: str, lane: str, name: str, start_ps: int, end_ps: int,
             args: dict[str, Any] | None = None) -> None:
        if end_ps > self.end_ps:
            self.extend(end_ps)
        if args and "bytes" in args:
            self.add(self.key("bytes", component), start_ps, end_ps, args["bytes"])
        if component == PE_ARRAY:
            if lane == "stall":
                self.add(self.key("stall", name), start_ps, end_ps, end_ps - start_ps)
            elif args and "active_pes" in args:
                self.add("active_pes", start_ps, end_ps, args["active_pes"] * (end_ps - start_ps))

    def counter(self, component: str, name: str, time_ps: int, value: float) -> None:
        self.level_of(self.key(component, name), time_ps, value)

    def level_of(self, key: str, time_ps: int, value: float) -> None:
        """A level counter's new value, by its series key."""
        self.set_level(self.level(key), time_ps, value)

    def level(self, key: str) -> Level:
        """The level counter with this series key (made at its first value)."""
        level = self._levels.get(key)
        if level is None:
            level = self._levels[key] = Level(key)
        return level

    def set_level(self, level: Level, time_ps: int, value: float) -> None:
        """The counter's value from `time_ps` on; the time at the previous value is integrated."""
        if time_ps > self.end_ps:
            self.extend(time_ps)
        since = level.time_ps
        if since != NEVER and time_ps > since:
            bins = level.bins
            if bins is None:
                bins = level.bins = self.bins_of(level.key)
            self.add_to(bins, since, time_ps, level.value * (time_ps - since))
        level.time_ps, level.value = time_ps, value

    def instant(self, component: str, name: str, time_ps: int, args: dict[str, Any] | None = None) -> None:
        return None

    def close(self) -> None:
        """Hold every level counter at its last value until the end of the run."""
        for key, level in self._levels.items():
            if level.time_ps != NEVER and self.end_ps > level.time_ps:
                self.add(key, level.time_ps, self.end_ps, level.value * (self.end_ps - level.time_ps))
        self._levels.clear()

    # ------------------------------------------------------------ results

    def windows(self) -> list[tuple[int, int]]:
        count = -(-self.end_ps // self.window_ps)
        return [(i * self.window_ps, min((i + 1) * self.window_ps, self.end_ps)) for i in range(count)]

    def total(self, key: str) -> float:
        return sum(self.series.get(key, ()))

    def value(self, key: str, index: int) -> float:
        bins = self.series.get(key, [])
        return bins[index] if index < len(bins) else 0.0

    def rows(self) -> list[dict[str, float]]:
        """One CSV row per window: rates and averages, with the window's bounds in seconds."""
        keys = sorted(self.series)
        rows = []
        for index, (start, end) in enumerate(self.windows()):
            width_ps = end - start
            width_s = width_ps / PS_PER_S
            row: dict[str, float] = {"start_s": start / PS_PER_S, "end_s": end / PS_PER_S}
            for key in keys:
                integral = self.value(key, index)
                if key.startswith("bytes."):
                    row[f"{key[6:]}_bw_bytes_per_s"] = integral / width_s
                elif key.startswith("stall."):
                    row[f"stall_{key[6:]}_s"] = integral / PS_PER_S
                elif key == "active_pes":
                    row["pe_utilization"] = integral / (width_ps * self.pe_count)
                else:
                    row[f"{key}_avg"] = integral / width_ps
            rows.append(row)
        return rows

    # ------------------------------------------------------------ binning

    def key(self, prefix: str, name: str) -> str:
        key = self._keys.get((prefix, name))
        if key is None:
            key = self._keys[(prefix, name)] = f"{prefix}.{name}"
        return key

    def extend(self, time_ps: int) -> None:
        """The run lasts at least until `time_ps` (windows double to stay within MAX_WINDOWS)."""
        if time_ps > self.end_ps:
            self.end_ps = time_ps
        while self.end_ps > self.window_ps * MAX_WINDOWS:
            self.window_ps *= 2
            for bins in self.series.values():
                if len(bins) % 2:
                    bins.append(0.0)
                # in place: the recording holds on to a series' bins
                bins[:] = [bins[i] + bins[i + 1] for i in range(0, len(bins), 2)]

    def bins_of(self, key: str) -> list[float]:
        """The series' bins, made at its first amount."""
        bins = self.series.get(key)
        if bins is None:
            bins = self.series[key] = []
        return bins

    def add(self, key: str, start_ps: int, end_ps: int, amount: float) -> None:
        self.add_to(self.bins_of(key), start_ps, end_ps, amount)

    def add_to(self, bins: list[float], start_ps: int, end_ps: int, amount: float) -> None:
        """Spread `amount` evenly over [start, end); an instantaneous amount goes to its window.
        The caller has already extended the run to `end_ps`."""
        width = self.window_ps
        first = start_ps // width
        last = (end_ps - 1) // width
        if last < first:
            last = first
        if len(bins) <= last:
            bins.extend([0.0] * (last + 1 - len(bins)))
        if first == last:
            bins[first] += amount
            return
        rate = amount / (end_ps - start_ps)
        for index in range(first, last + 1):
            low = max(start_ps, index * width)
            high = min(end_ps, (index + 1) * width)
            bins[index] += rate * (high - low)
