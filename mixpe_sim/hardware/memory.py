"""Off-chip memory timing as "busy-until" arithmetic: one call per DMA transfer, no per-cycle events.

`access(now_ps, addr, nbytes, is_write)` books the transfer on the memory's resources and returns the
time its last byte arrives. Requests are served in the order they are issued (FCFS).
`request(..., deliver, tag)` is the engine's interface: it returns the last byte's time when it is known
at once, or None and calls `deliver(tag, last_byte_ps)` later, so a scheduling controller
(hardware/dram_scheduler.py) that decides later can stand in for the FCFS arithmetic.
This module holds the paper's flat link, the ideal memory and the counters every memory fills; DRAM
(channels, banks, JEDEC timing) is in hardware/dram/.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mixpe_sim.config.models import FlatMemoryConfig, IdealMemoryConfig
from mixpe_sim.trace.sink import NULL_SINK, TraceSink
from mixpe_sim.units import PS_PER_S, ns_to_ps


@dataclass
class MemoryCounters:
    """What a memory did in one run; DRAM command counts are summed over all channels."""

    bytes_read: int = 0
    bytes_written: int = 0
    requests: int = 0
    row_hits: int = 0  # bursts that found their row open
    row_misses: int = 0  # bursts that opened their row
    read_bursts: int = 0
    write_bursts: int = 0
    acts: int = 0  # activate + precharge pairs
    refreshes: int = 0  # all-bank refresh commands issued (all channels, whole run)
    bank_refreshes: int = 0  # per-bank refresh commands issued
    precharged_ps: int = 0  # channel-picoseconds with every bank closed (precharge standby)
    # data-bus busy time per channel (flat memory has one "channel")
    channel_busy_ps: list[int] = field(default_factory=list)
    read_latencies_ps: list[int] = field(default_factory=list)


class BusyUntilMemory:
    """Engine interface of the FCFS models (ideal, flat, DRAM): the completion time is known when the
    request is made. Compiled, a call through this base is native (the load DMA's per-transfer call)."""

    def access(self, now_ps: int, addr: int, nbytes: int, is_write: bool) -> int:
        raise NotImplementedError

    def request(self, now_ps: int, addr: int, nbytes: int, is_write: bool,
                deliver: Callable[[Any, int], None] | None = None, tag: Any = None) -> int | None:
        """The time the last byte arrives (the engine's interface; `deliver` is for deferred models)."""
        return self.access(now_ps, addr, nbytes, is_write)

    def finish(self, end_ps: int) -> None:
        """The run ended at `end_ps`: settle time-based counters (DRAM background state, refresh)."""
        return None


class IdealMemory(BusyUntilMemory):
    """Every transfer completes the moment it is issued."""

    def __init__(self, cfg: IdealMemoryConfig, trace: TraceSink = NULL_SINK) -> None:
        self.cfg = cfg
        self.channels = 1
        self.counters = MemoryCounters(channel_busy_ps=[0])
        self._trace = trace
        self._link_lane = trace.lane("dram", "link", ("bytes",))

    def access(self, now_ps: int, addr: int, nbytes: int, is_write: bool) -> int:
        count_transfer(self.counters, nbytes, is_write, 0)
        if self._trace.enabled:
            self._trace.slice(self._link_lane, direction(is_write), now_ps, now_ps, nbytes)
        return now_ps


class FlatMemory(BusyUntilMemory):
    """One link of fixed bandwidth plus a fixed latency (the MixPE authors' model)."""

    def __init__(self, cfg: FlatMemoryConfig, trace: TraceSink = NULL_SINK) -> None:
        self.cfg = cfg
        self.channels = 1
        self._latency_ps = ns_to_ps(cfg.latency_ns)
        self._bw_bytes_per_s = cfg.bw_bytes_per_s
        self._duration_ps: dict[int, int] = {}  # transfer bytes -> time on the link
        self._bus_free_ps = 0
        self.counters = MemoryCounters(channel_busy_ps=[0])
        self._trace = trace
        self._link_lane = trace.lane("dram", "link", ("bytes",))

    def access(self, now_ps: int, addr: int, nbytes: int, is_write: bool) -> int:
        return self.request(now_ps, addr, nbytes, is_write)

    def request(self, now_ps: int, addr: int, nbytes: int, is_write: bool,
                deliver: Callable[[Any, int], None] | None = None, tag: Any = None) -> int:
        """Book the transfer; its last byte's time (the engine's call: the body is here, not in
        `access`, so a transfer is one call)."""
        bus_free = self._bus_free_ps
        start = now_ps if now_ps > bus_free else bus_free
        duration = self._duration_ps.get(nbytes)
        if duration is None:  # few distinct tile sizes: the wide-integer division once per size
            duration = self._duration_ps[nbytes] = -(-nbytes * PS_PER_S // self._bw_bytes_per_s)
        self._bus_free_ps = end = start + duration
        counters = self.counters
        counters.channel_busy_ps[0] += duration
        if self._trace.enabled:
            self._trace.slice(self._link_lane, direction(is_write), start, end, nbytes)
        finish = end + self._latency_ps
        counters.requests += 1  # _count, inlined: one call per transfer
        if is_write:
            counters.bytes_written += nbytes
        else:
            counters.bytes_read += nbytes
            counters.read_latencies_ps.append(finish - now_ps)
        return finish


def direction(is_write: bool) -> str:
    return "write" if is_write else "read"


def count_transfer(counters: MemoryCounters, nbytes: int, is_write: bool, latency_ps: int | None) -> None:
    """One DMA transfer served; a read's latency (issue to last byte) when it is known."""
    counters.requests += 1
    if is_write:
        counters.bytes_written += nbytes
    else:
        counters.bytes_read += nbytes
        if latency_ps is not None:
            counters.read_latencies_ps.append(latency_ps)
