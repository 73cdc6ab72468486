"""The simulation clock as the hardware models use it: a `simpy.Environment` whose times are integers.

Every time in the engine is whole picoseconds, so `now` is an int. Typing it so (SimPy says int or
float) keeps the hardware modules type-clean for mypyc, which compiles integer arithmetic natively
(hatch_build.py; the engine modules are not compiled yet: docs/performance.md). A typing aid only: at
run time the object is the SimPy environment itself.
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
