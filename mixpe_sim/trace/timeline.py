"""Windowed timelines: bytes moved, stall time, active PEs and buffer occupancy per time window.

A trace sink that integrates what the components report into fixed-width windows. The window starts
at 10 ns and doubles (merging neighbours, which is exact for integrals) whenever the run outgrows
MAX_WINDOWS, so memory stays bounded and the totals over all windows are exactly what was reported.
"""

from __future__ import annotations

from typing import Any, Final

from librt.vecs import vec

from mixpe_sim.trace.sink import TraceSink
from mixpe_sim.units import PS_PER_S

INITIAL_WINDOW_PS: Final = 10_000
MAX_WINDOWS: Final = 2000
# bins per series: every window, and one for an instantaneous amount at the end of the last (even, so
# that merging neighbours pairs them all)
SERIES_BINS: Final = MAX_WINDOWS + 2
PE_ARRAY: Final = "pe_array"
ACTIVE_PES: Final = "active_pes"  # the series of PE-picoseconds of useful work
NEVER: Final = -1  # a level counter's time before its first value


class Level:
    """A level counter: its last value and since when (integrated when it changes)."""

    __slots__ = ("bins", "key", "time_ps", "value")

    def __init__(self, key: str) -> None:
        self.key = key
        self.time_ps = NEVER
        self.value = 0.0
        self.bins: vec[float] | None = None


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
        self.series: dict[str, vec[float]] = {}
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
                self.add(ACTIVE_PES, start_ps, end_ps, args["active_pes"] * (end_ps - start_ps))

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
        bins = self.series.get(key)
        return bins[index] if bins is not None and index < len(bins) else 0.0

    def rows(self) -> list[dict[str, float]]:
        """One CSV row per window: rates and averages, with the window's bounds in seconds."""
        names, columns = self.columns()
        return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]

    def csv_text(self) -> str:
        """`rows()` as CSV (what report.files.csv_text writes for them: Python's float text, no quoting)."""
        names, columns = self.columns()
        if not columns or not columns[0]:
            return ""
        lines = [",".join(names)]
        lines.extend(",".join([repr(value) for value in values]) for values in zip(*columns, strict=True))
        return "\n".join(lines) + "\n"

    def columns(self) -> tuple[list[str], list[list[float]]]:
        """The rows' column names and, per column, its value in every window (window bounds first)."""
        windows = self.windows()
        names = ["start_s", "end_s"]
        columns = [[start / PS_PER_S for start, _ in windows], [end / PS_PER_S for _, end in windows]]
        for key in sorted(self.series):
            bins = self.series[key]
            integrals = [bins[index] if index < len(bins) else 0.0 for index in range(len(windows))]
            widths = [end - start for start, end in windows]
            if key.startswith("bytes."):
                names.append(f"{key[6:]}_bw_bytes_per_s")
                columns.append([v / (w / PS_PER_S) for v, w in zip(integrals, widths, strict=True)])
            elif key.startswith("stall."):
                names.append(f"stall_{key[6:]}_s")
                columns.append([v / PS_PER_S for v in integrals])
            elif key == ACTIVE_PES:
                names.append("pe_utilization")
                columns.append([v / (w * self.pe_count) for v, w in zip(integrals, widths, strict=True)])
            else:
                names.append(f"{key}_avg")
                columns.append([v / w for v, w in zip(integrals, widths, strict=True)])
        return names, columns

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
            half = SERIES_BINS // 2
            for bins in self.series.values():  # neighbours merged in place (the recording holds the bins)
                for index in range(half):
                    bins[index] = bins[2 * index] + bins[2 * index + 1]
                for index in range(half, SERIES_BINS):
                    bins[index] = 0.0

    def bins_of(self, key: str) -> vec[float]:
        """The series' bins, made at its first amount: a fixed number of native floats (no object per
        amount added), all windows the run can have."""
        bins = self.series.get(key)
        if bins is None:
            bins = self.series[key] = vec[float]([0.0] * SERIES_BINS)
        return bins

    def add(self, key: str, start_ps: int, end_ps: int, amount: float) -> None:
        self.add_to(self.bins_of(key), start_ps, end_ps, amount)

    def add_to(self, bins: vec[float], start_ps: int, end_ps: int, amount: float) -> None:
        """Spread `amount` evenly over [start, end); an instantaneous amount goes to its window.
        The caller has already extended the run to `end_ps`."""
        width = self.window_ps
        first = start_ps // width
        last = (end_ps - 1) // width
        if last < first:
            last = first
        if first == last:
            bins[first] += amount
            return
        rate = amount / (end_ps - start_ps)
        for index in range(first, last + 1):
            low = max(start_ps, index * width)
            high = min(end_ps, (index + 1) * width)
            bins[index] += rate * (high - low)
