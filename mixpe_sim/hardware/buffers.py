"""On-chip SRAM buffer: byte capacity with reservations.

A DMA reserves space before it loads (a full buffer back-pressures the DMA); the consumer releases
the space after the tile's last use. Double buffering is the consequence, not a flag: when two
tiles fit, the next one loads while the current one is in use.
"""

from __future__ import annotations

from collections.abc import Generator

import simpy

from mixpe_sim.config.models import BufferConfig
from mixpe_sim.engine.counters import BufferCounters
from mixpe_sim.hardware.primitives import ByteSpace
from mixpe_sim.trace.sink import TraceSink


class Buffer:
    def __init__(self, env: simpy.Environment, name: str, cfg: BufferConfig, trace: TraceSink) -> None:
        self.env = env
        self.name = name
        self.capacity_bytes = cfg.capacity_bytes
        self._space = ByteSpace(env, cfg.capacity_bytes)
        self._trace = trace
        self.counters = BufferCounters()

    @property
    def occupancy_bytes(self) -> int:
        return self.capacity_bytes - self._space.free_bytes

    def reserve(self, nbytes: int) -> Generator[simpy.Event, None, None]:
        """`yield from buffer.reserve(n)`: returns once n bytes are held for the caller."""
        if not self._space.try_reserve(nbytes):
            yield self._space.wait_reserve(nbytes)
        self._changed()

    def release(self, nbytes: int) -> None:
        self._space.release(nbytes)
        self._changed()

    def _changed(self) -> None:
        occupancy = self.capacity_bytes - self._space.free_bytes
        if occupancy > self.counters.peak_occupancy_bytes:
            self.counters.peak_occupancy_bytes = occupancy
        if self._trace.enabled:
            self._trace.counter(f"buffer.{self.name}", "occupancy_bytes", self.env.now, occupancy)
