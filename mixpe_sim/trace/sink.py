"""The one interface components use to report what happened and when (times in picoseconds).

Components test `sink.enabled` before building arguments, so the default sink costs nothing.

Two ways to report, one interface:
- `span`, `counter`, `instant`: a record with its arguments as a dict (rare records: ops, layers, stalls);
- `lane` once, then `slice` / `sample` per record: a component that reports many records on one
  (component, lane) with fixed argument keys registers the lane when it is built and passes the values
  positionally (tiles, transfers, buffer levels). No dict per record, and a native call when compiled.
  The base class turns these into `span` / `counter`, so a sink that implements only the first three
  methods sees every record; the `--trace` recording overrides them to keep plain numbers.

A sink is a `TraceSink`: subclass it (an interpreted subclass of the compiled class is allowed), or
pass any object with `enabled`, `span`, `counter`, `instant` and `close` through `as_trace_sink`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeVar

_Class = TypeVar("_Class")
try:
    from mypy_extensions import mypyc_attr
except ImportError:  # only the compiler reads the attribute: at run time the class is unchanged
    def mypyc_attr(*attrs: str, **kwattrs: object) -> Callable[[_Class], _Class]:  # type: ignore[misc]
        return lambda cls: cls


MAX_SLICE_VALUES: Final = 5  # values a `slice` passes (the most a component reports per record: a tile's)


class TraceLane:
    """A (component, lane) on which one component reports records with the argument `keys`, in order.
    `index` is the registering sink's own number for it (-1: the sink keeps no table)."""

    __slots__ = ("component", "index", "keys", "lane")

    def __init__(self, component: str, lane: str, keys: tuple[str, ...], index: int = -1) -> None:
        self.component, self.lane, self.keys, self.index = component, lane, keys, index


@mypyc_attr(allow_interpreted_subclasses=True)
class TraceSink:
    """Records nothing (the default); subclasses record."""

    enabled: bool = False

    def span(self, component: str, lane: str, name: str, start_ps: int, end_ps: int,
             args: dict[str, Any] | None = None) -> None:
        return None

    def counter(self, component: str, name: str, time_ps: int, value: float) -> None:
        return None

    def instant(self, component: str, name: str, time_ps: int, args: dict[str, Any] | None = None) -> None:
        return None

    def close(self) -> None:
        return None

    def lane(self, component: str, lane: str, keys: tuple[str, ...] = ()) -> TraceLane:
        """Register a lane for `slice` (at most five keys) or, with no keys, for `sample` (a level counter)."""
        if len(keys) > MAX_SLICE_VALUES:
            raise ValueError(f"a trace lane takes at most {MAX_SLICE_VALUES} argument keys, not {keys}")
        return TraceLane(component, lane, keys)

    def slice(self, lane: TraceLane, name: str, start_ps: int, end_ps: int, v0: object = None,
              v1: object = None, v2: object = None, v3: object = None, v4: object = None) -> None:
        """`span` with the lane's keys bound to the values in order."""
        keys = lane.keys
        args = dict(zip(keys, (v0, v1, v2, v3, v4)[:len(keys)], strict=True)) if keys else None
        self.span(lane.component, lane.lane, name, start_ps, end_ps, args)

    def sample(self, lane: TraceLane, time_ps: int, value: float) -> None:
        """`counter`: the lane names the counter."""
        self.counter(lane.component, lane.lane, time_ps, value)


class NullSink(TraceSink):
    """Records nothing."""


NULL_SINK = NullSink()


class TeeSink(TraceSink):
    """Forwards every record to several sinks (e.g. the in-memory spans and the timeline)."""

    def __init__(self, *sinks: TraceSink) -> None:
        self.enabled = True
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


class ShiftedSink(TraceSink):
    """Places a simulation that starts at t=0 at `offset_ps` on a longer timeline (e.g. decode after
    prefill). Closing it does not close the sink it forwards to."""

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

    def lane(self, component: str, lane: str, keys: tuple[str, ...] = ()) -> TraceLane:
        return self._inner.lane(component, lane, keys)

    def slice(self, lane: TraceLane, name: str, start_ps: int, end_ps: int, v0: object = None,
              v1: object = None, v2: object = None, v3: object = None, v4: object = None) -> None:
        self._inner.slice(lane, name, start_ps + self._offset, end_ps + self._offset, v0, v1, v2, v3, v4)

    def sample(self, lane: TraceLane, time_ps: int, value: float) -> None:
        self._inner.sample(lane, time_ps + self._offset, value)


class _ForeignSink(TraceSink):
    """An object with the record methods that is not a TraceSink: the components call this."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.enabled = bool(inner.enabled)

    def span(self, component: str, lane: str, name: str, start_ps: int, end_ps: int,
             args: dict[str, Any] | None = None) -> None:
        self._inner.span(component, lane, name, start_ps, end_ps, args)

    def counter(self, component: str, name: str, time_ps: int, value: float) -> None:
        self._inner.counter(component, name, time_ps, value)

    def instant(self, component: str, name: str, time_ps: int, args: dict[str, Any] | None = None) -> None:
        self._inner.instant(component, name, time_ps, args)

    def close(self) -> None:
        self._inner.close()


def as_trace_sink(sink: Any) -> TraceSink:
    """`sink` itself if it is a TraceSink, else a TraceSink forwarding its records to it."""
    return sink if isinstance(sink, TraceSink) else _ForeignSink(sink)
