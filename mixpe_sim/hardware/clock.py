"""The simulation clock as the hardware models use it: a `simpy.Environment` whose times are integers.

Every time in the engine is whole picoseconds, so `now` is an int. Typing it so (SimPy says int or
float) lets mypyc compile the hot modules to native integer arithmetic (hatch_build.py). A typing
aid only: at run time the object is the SimPy environment itself. This module is not compiled.
"""

from __future__ import annotations

from typing import Any, Protocol

import simpy


class Clock(Protocol):
    now: int
    _now: int
    _queue: list[Any]

    def timeout(self, delay: int, value: Any = None) -> simpy.Timeout: ...

    def event(self) -> simpy.Event: ...

    def process(self, generator: Any) -> simpy.Process: ...

    def schedule(self, event: simpy.Event, priority: int = ..., delay: int = ...) -> None: ...
