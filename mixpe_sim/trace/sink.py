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
