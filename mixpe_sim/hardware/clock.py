"""What the hardware models take from SimPy: the clock, typed as integer picoseconds, and the one
event class of our own. Never compiled (hatch_build.py): mypyc must not compile a subclass of a
SimPy class, whose layout it does not know.

Every time in the engine is whole picoseconds, so `now` is an int. Typing it so (SimPy says int or
float) keeps the compiled modules' arithmetic native. `Clock` is a typing aid only: at run time the
object is the SimPy environment itself.
"""

from __future__ import annotations

from typing import Any, Protocol

import simpy
from simpy.events import NORMAL


class Clock(Protocol):
    now: int
    _now: int
    _queue: list[Any]

    def timeout(self, delay: int, value: Any = None) -> simpy.Timeout: ...

    def event(self) -> simpy.Event: ...

    def process(self, generator: Any) -> simpy.Process: ...

    def schedule(self, event: simpy.Event, priority: int = ..., delay: int = ...) -> None: ...


class ArrivalEvent(simpy.Event):
    """An event whose trigger time is known when it is armed (a transfer's last byte).

    It exists before it is armed, so a consumer can wait for a tile the DMA has not issued yet;
    arming schedules it directly, like a Timeout, instead of a timeout plus a callback.
    """

    def arm(self, delay_ps: int) -> None:
        self._ok = True
        self._value = None
        self.env.schedule(self, NORMAL, delay_ps)
