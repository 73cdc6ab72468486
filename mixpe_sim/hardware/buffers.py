"""On-chip SRAM buffer: byte capacity with reservations.

A DMA reserves space before it loads (a full buffer back-pressures the DMA); the consumer releases
the space after the tile's last use. Double buffering is the consequence, not a flag: when two
tiles fit, the next one loads while the current one is in use. Reservations are granted in FIFO
order, without an event when they fit at once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator

import simpy

from mixpe_sim.config.models import BufferConfig
from mixpe_sim.hardware.clock import Clock
from mixpe_sim.hardware.counters import BufferCounters
from mixpe_sim.trace.sink import TraceSink


class Buffer:
    def __init__(self, env: Clock, name: str, cfg: BufferConfig, trace: TraceSink) -> None:
        self.env = env
        self.name = name
        self.capacity_bytes = cfg.capacity_bytes
        self.free_bytes = cfg.capacity_bytes
        self._waiters: deque[tuple[int, simpy.Event]] = deque()
        self._trace = trace
        self._traced = trace.enabled  # read on every reservation and release
        self._occupancy_lane = trace.lane(f"buffer.{name}", "occupancy_bytes")  # as the trace names it
        self.counters = BufferCounters()
        # set by the DMA that fills this buffer when it stops for lack of space: called once on the next release
        self.wake_on_release: Callable[[], None] | None = None

    @property
    def occupancy_bytes(self) -> int:
        return self.capacity_bytes - self.free_bytes

    def try_reserve(self, nbytes: int) -> bool:
        """Take `nbytes` now if they are free and nobody is queued (the DMA's way: it never waits here)."""
        if self._waiters or nbytes > self.free_bytes:
            return False
        self.free_bytes -= nbytes
        occupancy = self.capacity_bytes - self.free_bytes  # _grew, inlined: the DMA calls this per tile
        if occupancy > self.counters.peak_occupancy_bytes:
            self.counters.peak_occupancy_bytes = occupancy
        if self._traced:
            self._trace.sample(self._occupancy_lane, self.env._now, occupancy)
        return True

    def reserve(self, nbytes: int) -> Generator[simpy.Event, None, None]:
        """`yield from buffer.reserve(n)`: returns once n bytes are held for the caller."""
        if self.try_reserve(nbytes):
            return
        if nbytes > self.capacity_bytes:
            raise ValueError(f"reservation of {nbytes} bytes exceeds {self.name} capacity {self.capacity_bytes}")
        granted = self.env.event()
        self._waiters.append((nbytes, granted))
        self._grant()
        yield granted

    def release(self, nbytes: int) -> None:
        self.free_bytes += nbytes
        if self._waiters:
            self._grant()
        if self._traced:
            self._trace.sample(self._occupancy_lane, self.env._now, self.occupancy_bytes)
        wake = self.wake_on_release
        if wake is not None:
            self.wake_on_release = None
            wake()

    def _grant(self) -> None:
        waiters = self._waiters
        while waiters and waiters[0][0] <= self.free_bytes:
            nbytes, granted = waiters.popleft()
            self.free_bytes -= nbytes
            self._grew()
            granted.succeed()

    def _grew(self) -> None:
        occupancy = self.capacity_bytes - self.free_bytes
        if occupancy > self.counters.peak_occupancy_bytes:
            self.counters.peak_occupancy_bytes = occupancy
        if self._traced:
            self._trace.sample(self._occupancy_lane, self.env._now, occupancy)
