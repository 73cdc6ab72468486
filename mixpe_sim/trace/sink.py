"""The one interface components use to report what happened and when (times in picoseconds).

Components test `sink.enabled` before building arguments, so the default sink costs nothing.
"""

from __future__ import annotations

from typing import Any, Protocol


class TraceSink(Protocol):
    enabled: bool

    def span(self, component: str, lane: str, name: str, start_ps: int, end_ps: int,
             args: dict[str, Any] | None = None) -> None: ...

    def counter(self, component: str, name: str, time_ps: int, value: float) -> None: ...

    def instant(self, component: str, name: str, time_ps: int, args: dict[str, Any] | None = None) -> None: ...

    def close(self) -> None: ...


class NullSink:
    """Records nothing."""

    enabled = False

    def span(self, component: str, lane: str, name: str, start_ps: int, end_ps: int,
             args: dict[str, Any] | None = None) -> None:
        return None

    def counter(self, component: str, name: str, time_ps: int, value: float) -> None:
        return None

    def instant(self, component: str, name: str, time_ps: int, args: dict[str, Any] | None = None) -> None:
        return None

    def close(self) -> None:
        return None


NULL_SINK = NullSink()


class TeeSink:
    """Forwards every record to several sinks (e.g. the Chrome trace writer and the timeline)."""

    enabled = True

    def __init__(self, *sinks: TraceSink) -> None:
        self._sinks = sinks

    def span(self, component: str, lane: str, name: str, start_ps: int, end_ps: int,
             args: dict[str, Any] | None = None) -> None:
        for sink in self._sinks:
            sink.span(component, lane, name, start_ps, end_ps, args)

    def counter(self, component: str, name: str, time_ps: int, value: float) -> None:
        for sink in self._sinks:
            sink.counter(component, name, time_ps, value)

    def instant(self, component: str, name: str, time_ps: int, args: dict[str, Any] | None = None) -> None:
        for sink in self._sinks:
            sink.instant(component, name, time_ps, args)

    def close(self) -> None:
        for sink in self._sinks:
            sink.close()


class ShiftedSink:
    """Places a simulation that starts at t=0 at `offset_ps` on a longer timeline (e.g. decode after
    prefill). Closing it does not close the sink it forwards to."""

    enabled = True

    def __init__(self, inner: TraceSink, offset_ps: int) -> None:
        self._inner, self._offset = inner, offset_ps
        self.enabled = inner.enabled

    def span(self, component: str, lane: str, name: str, start_ps: int, end_ps: int,
             args: dict[str, Any] | None = None) -> None:
        self._inner.span(component, lane, name, start_ps + self._offset, end_ps + self._offset, args)

    def counter(self, component: str, name: str, time_ps: int, value: float) -> None:
        self._inner.counter(component, name, time_ps + self._offset, value)

    def instant(self, component: str, name: str, time_ps: int, args: dict[str, Any] | None = None) -> None:
        self._inner.instant(component, name, time_ps + self._offset, args)

    def close(self) -> None:
        return None
