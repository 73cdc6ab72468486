"""`trace=True` in the Python API: spans and the windowed timeline kept in memory, as DataFrames."""

from __future__ import annotations

from typing import Any

from mixpe_sim.trace.sink import TeeSink, TraceSink
from mixpe_sim.trace.timeline import TimelineRecorder
from mixpe_sim.units import PS_PER_S


class SpanCollector(TraceSink):
    """Every span and instant, in the order reported."""

    def __init__(self) -> None:
        self.enabled = True
        self.spans: list[tuple[str, str, str, int, int, dict[str, Any] | None]] = []

    def span(self, component: str, lane: str, name: str, start_ps: int, end_ps: int,
             args: dict[str, Any] | None = None) -> None:
        self.spans.append((component, lane, name, start_ps, end_ps, args))

    def counter(self, component: str, name: str, time_ps: int, value: float) -> None:
        return None

    def instant(self, component: str, name: str, time_ps: int, args: dict[str, Any] | None = None) -> None:
        self.spans.append((component, "instant", name, time_ps, time_ps, args))

    def close(self) -> None:
        return None


class InMemoryTrace(TeeSink):
    def __init__(self, pe_count: int) -> None:
        self.collector = SpanCollector()
        self.timeline = TimelineRecorder(pe_count)
        super().__init__(self.collector, self.timeline)

    def frames(self) -> tuple[Any, Any]:
        """(timeline, spans): one row per time window (rates and averages, docs/traces.md), and one
        row per span: component, lane, name, start_s, end_s and its arguments."""
        import pandas as pd

        self.timeline.close()
        spans = pd.DataFrame([{"component": c, "lane": lane, "name": name, "start_s": start / PS_PER_S,
                               "end_s": end / PS_PER_S, **(args or {})}
                              for c, lane, name, start, end, args in self.collector.spans])
        return pd.DataFrame(self.timeline.rows()), spans
