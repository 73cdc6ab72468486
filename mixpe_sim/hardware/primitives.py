"""Small SimPy primitives, cheaper than the general-purpose ones for this engine's patterns."""

from __future__ import annotations

from collections import deque

import simpy
from simpy.events import NORMAL


class ArrivalEvent(simpy.Event):
    """An event whose trigger time is known when it is armed (a transfer's last byte).

    It exists before it is armed, so a consumer can wait for a tile the DMA has not issued yet;
    arming schedules it directly, like a Timeout, instead of a timeout plus a callback.
    """

    def arm(self, delay_ps: int) -> None:
        self._ok = True
        self._value = None
        self.env.schedule(self, NORMAL, delay_ps)


class ByteSpace:
    """Free bytes of an SRAM: reservations are granted in FIFO order, without an event when they fit."""

    def __init__(self, env: simpy.Environment, capacity_bytes: int) -> None:
        self.env = env
        self.capacity_bytes = capacity_bytes
        self.free_bytes = capacity_bytes
        self._waiters: deque[tuple[int, simpy.Event]] = deque()

    def try_reserve(self, nbytes: int) -> bool:
        if self._waiters or nbytes > self.free_bytes:
            return False
        self.free_bytes -= nbytes
        return True

    def wait_reserve(self, nbytes: int) -> simpy.Event:
        """An event that fires once `nbytes` have been granted (after earlier waiters)."""
        if nbytes > self.capacity_bytes:
            raise ValueError(f"reservation of {nbytes} bytes exceeds capacity {self.capacity_bytes}")
        event = self.env.event()
        self._waiters.append((nbytes, event))
        self._grant()
        return event

    def release(self, nbytes: int) -> None:
        self.free_bytes += nbytes
        self._grant()

    def _grant(self) -> None:
        waiters = self._waiters
        while waiters and waiters[0][0] <= self.free_bytes:
            nbytes, event = waiters.popleft()
            self.free_bytes -= nbytes
            event.succeed()
