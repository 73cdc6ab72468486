"""FR-FCFS DRAM controller: per channel, serve the oldest queued row hit first, else the oldest.

Scheduling happens at transaction granularity (a DMA transfer's share of one channel), one SimPy
process per channel. The timing of each transaction is the same bank/row/bus arithmetic as the FCFS
model (DramMemory.serve_range, independent channels); only the order differs. The controller decides
on the next transaction `miss_lead` before the data bus frees, so a miss's precharge/activate
overlaps the current burst.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import simpy

from mixpe_sim.config.models import DramMemoryConfig, FlatMemoryConfig, MemoryConfig
from mixpe_sim.hardware.dram.memory import DramMemory
from mixpe_sim.hardware.memory import FlatMemory, IdealMemory, MemoryCounters, count_transfer
from mixpe_sim.trace.sink import NULL_SINK, TraceSink


@dataclass
class _Transfer:
    issued_ps: int
    is_write: bool
    deliver: Callable[[Any, int], None]
    tag: Any
    parts_left: int
    finish_ps: int


@dataclass
class _Part:
    transfer: _Transfer
    lo: int
    hi: int


class ScheduledDram:
    def __init__(self, env: simpy.Environment, cfg: DramMemoryConfig, trace: TraceSink = NULL_SINK) -> None:
        self.env = env
        self.cfg = cfg
        self.timing = DramMemory(cfg, trace)
        self.channels = cfg.channels
        self._queues: list[list[_Part]] = [[] for _ in range(cfg.channels)]
        self._wakeups: list[simpy.Event | None] = [None] * cfg.channels
        for channel in range(cfg.channels):
            env.process(self._controller(channel))

    @property
    def counters(self) -> MemoryCounters:
        return self.timing.counters

    def finish(self, end_ps: int) -> None:
        self.timing.finish(end_ps)

    def request(self, now_ps: int, addr: int, nbytes: int, is_write: bool,
                deliver: Callable[[Any, int], None], tag: Any) -> int | None:
        ranges = self.timing.channel_ranges(addr, nbytes)
        count_transfer(self.timing.counters, nbytes, is_write, None)
        bursts = (addr + nbytes - 1) // self.cfg.burst_bytes - addr // self.cfg.burst_bytes + 1
        if is_write:
            self.timing.counters.write_bursts += bursts
        else:
            self.timing.counters.read_bursts += bursts
        transfer = _Transfer(now_ps, is_write, deliver, tag, len(ranges), now_ps)
        for channel, lo, hi in ranges:
            self._queues[channel].append(_Part(transfer, lo, hi))
            wakeup = self._wakeups[channel]
            if wakeup is not None and not wakeup.triggered:
                wakeup.succeed()
        return None  # decided by the channel controllers, delivered when the last part is served

    def _pick(self, channel: int) -> _Part:
        queue = self._queues[channel]
        for index in range(min(len(queue), self.cfg.queue_depth)):
            if self.timing.is_row_hit(channel, queue[index].lo):
                return queue.pop(index)
        return queue.pop(0)

    def _controller(self, channel: int) -> Generator[simpy.Event, None, None]:
        env, timing = self.env, self.timing
        lead = timing.miss_lead_ps
        while True:
            if not self._queues[channel]:
                self._wakeups[channel] = env.event()
                yield self._wakeups[channel]
                continue
            part = self._pick(channel)
            finish = timing.serve_range(channel, part.lo, part.hi, env.now, part.transfer.is_write)
            self._finish_part(part, finish)
            decide_at = timing.bus_free_ps(channel) - lead
            if decide_at > env.now:
                yield env.timeout(decide_at - env.now)

    def _finish_part(self, part: _Part, finish_ps: int) -> None:
        transfer = part.transfer
        transfer.finish_ps = max(transfer.finish_ps, finish_ps)
        transfer.parts_left -= 1
        if transfer.parts_left == 0:
            if not transfer.is_write:
                self.timing.counters.read_latencies_ps.append(transfer.finish_ps - transfer.issued_ps)
            transfer.deliver(transfer.tag, transfer.finish_ps)


MemoryModel = IdealMemory | FlatMemory | DramMemory | ScheduledDram


def build_memory(env: simpy.Environment, cfg: MemoryConfig, trace: TraceSink = NULL_SINK) -> MemoryModel:
    if isinstance(cfg, DramMemoryConfig):
        return ScheduledDram(env, cfg, trace) if cfg.scheduler == "fr_fcfs" else DramMemory(cfg, trace)
    if isinstance(cfg, FlatMemoryConfig):
        return FlatMemory(cfg, trace)
    return IdealMemory(cfg, trace)
