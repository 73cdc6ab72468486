"""Off-chip memory timing as "busy-until" arithmetic: one call per DMA transfer, no per-cycle events.

`access(now_ps, addr, nbytes, is_write)` books the transfer on the memory's resources and returns the
time its last byte arrives. Requests are served in the order they are issued (FCFS per channel).
`request(..., deliver, tag)` is the engine's interface: it returns the last byte's time when it is known
at once (here), or None and calls `deliver(tag, last_byte_ps)` later, so a scheduling controller
(hardware/dram_scheduler.py) that decides later can stand in for the FCFS arithmetic.
A DRAM transfer is split into per-channel transactions by the address mapping; each transaction
walks its row segments, paying precharge/activate on row misses and burst time on the data bus, so
achieved bandwidth emerges from row hits, bank parallelism and refresh rather than being a constant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mixpe_sim.config.models import DramMemoryConfig, FlatMemoryConfig, IdealMemoryConfig
from mixpe_sim.trace.sink import NULL_SINK, TraceSink
from mixpe_sim.units import PS_PER_S, ns_to_ps


@dataclass
class MemoryCounters:
    bytes_read: int = 0
    bytes_written: int = 0
    requests: int = 0
    row_hits: int = 0
    row_misses: int = 0
    bursts: int = 0
    # data-bus busy time per channel (flat memory has one "channel")
    channel_busy_ps: list[int] = field(default_factory=list)
    read_latencies_ps: list[int] = field(default_factory=list)


class _BusyUntil:
    """Engine interface of the FCFS models: the completion time is known when the request is made."""

    def access(self, now_ps: int, addr: int, nbytes: int, is_write: bool) -> int:
        raise NotImplementedError

    def request(self, now_ps: int, addr: int, nbytes: int, is_write: bool,
                deliver: Callable[[Any, int], None], tag: Any) -> int | None:
        """The time the last byte arrives (the engine's interface; `deliver` is for deferred models)."""
        return self.access(now_ps, addr, nbytes, is_write)


class IdealMemory(_BusyUntil):
    """Every transfer completes the moment it is issued."""

    def __init__(self, cfg: IdealMemoryConfig, trace: TraceSink = NULL_SINK) -> None:
        self.cfg = cfg
        self.channels = 1
        self.counters = MemoryCounters(channel_busy_ps=[0])
        self._trace = trace

    def access(self, now_ps: int, addr: int, nbytes: int, is_write: bool) -> int:
        _count(self.counters, nbytes, is_write, latency_ps=0)
        if self._trace.enabled:
            self._trace.span("dram", "link", _direction(is_write), now_ps, now_ps, {"bytes": nbytes})
        return now_ps


class FlatMemory(_BusyUntil):
    """One link of fixed bandwidth plus a fixed latency (the MixPE authors' model)."""

    def __init__(self, cfg: FlatMemoryConfig, trace: TraceSink = NULL_SINK) -> None:
        self.cfg = cfg
        self.channels = 1
        self._latency_ps = ns_to_ps(cfg.latency_ns)
        self._bw_bytes_per_s = cfg.bw_bytes_per_s
        self._bus_free_ps = 0
        self.counters = MemoryCounters(channel_busy_ps=[0])
        self._trace = trace

    def access(self, now_ps: int, addr: int, nbytes: int, is_write: bool) -> int:
        bus_free = self._bus_free_ps
        start = now_ps if now_ps > bus_free else bus_free
        duration = -(-nbytes * PS_PER_S // self._bw_bytes_per_s)
        self._bus_free_ps = end = start + duration
        counters = self.counters
        counters.channel_busy_ps[0] += duration
        if self._trace.enabled:
            self._trace.span("dram", "link", _direction(is_write), start, end, {"bytes": nbytes})
        finish = end + self._latency_ps
        counters.requests += 1  # _count, inlined: one call per transfer
        if is_write:
            counters.bytes_written += nbytes
        else:
            counters.bytes_read += nbytes
            counters.read_latencies_ps.append(finish - now_ps)
        return finish

    def request(self, now_ps: int, addr: int, nbytes: int, is_write: bool,
                deliver: Callable[[Any, int], None], tag: Any) -> int | None:
        """The time the last byte arrives (the engine's interface; `deliver` is for deferred models)."""
        return self.access(now_ps, addr, nbytes, is_write)


class _Channel:
    """Mutable timing state of one DRAM channel."""

    __slots__ = ("act_history", "bank_ready", "bus_free", "last_act", "next_refresh", "open_row")

    def __init__(self, banks: int, trefi_ps: int) -> None:
        self.bus_free = 0
        self.open_row = [-1] * banks
        self.bank_ready = [0] * banks  # earliest next column command (or ACT when closed)
        self.last_act = [-(10**15)] * banks
        self.act_history: list[int] = []  # the last four ACT times, for tRRD / tFAW
        self.next_refresh = trefi_ps


class DramMemory(_BusyUntil):
    """Channels x banks with row buffers, JEDEC-style timing, address interleave and refresh."""

    def __init__(self, cfg: DramMemoryConfig, trace: TraceSink = NULL_SINK) -> None:
        self.cfg = cfg
        self._trace = trace
        t = cfg.timing
        self.channels = cfg.channels
        self._trcd, self._tcl, self._trp = ns_to_ps(t.trcd_ns), ns_to_ps(t.tcl_ns), ns_to_ps(t.trp_ns)
        self._tras, self._trrd, self._tfaw = ns_to_ps(t.tras_ns), ns_to_ps(t.trrd_ns), ns_to_ps(t.tfaw_ns)
        self._trefi, self._trfc = ns_to_ps(t.trefi_ns), ns_to_ps(t.trfc_ns)
        # burst_length beats at data_rate_mtps transfers per second per pin
        self._tburst = round(cfg.burst_length * 1e6 / cfg.data_rate_mtps)
        self._burst_bytes = cfg.burst_bytes
        self._bank_interleaved = cfg.mapping == "row_column_bank_channel"
        self._all_closed = [-1] * cfg.banks_per_channel
        self._state = [_Channel(cfg.banks_per_channel, self._trefi) for _ in range(cfg.channels)]
        self.counters = MemoryCounters(channel_busy_ps=[0] * cfg.channels)

    # ------------------------------------------------------------ address mapping

    def channel_ranges(self, addr: int, nbytes: int) -> list[tuple[int, int, int]]:
        """Split [addr, addr+nbytes) into (channel, local_start, local_end) ranges.

        Consecutive `interleave_bytes` granules go to consecutive channels, so a contiguous global
        range is one contiguous range of each channel's local address space.
        """
        g, c = self.cfg.interleave_bytes, self.cfg.channels
        end = addr + nbytes
        q0, q1 = addr // g, (end - 1) // g
        ranges = []
        for ch in range(c):
            first = q0 + (ch - q0) % c
            if first > q1:
                continue
            last = q1 - (q1 - ch) % c
            lo = (first // c) * g + (addr % g if first == q0 else 0)
            hi = (last // c) * g + ((end - 1) % g + 1 if last == q1 else g)
            ranges.append((ch, lo, hi))
        return ranges

    def _locate(self, local: int) -> tuple[int, int, int]:
        """Channel-local address -> (bank, row, end of the run that stays in that bank row).

        row_bank_column_channel: a whole row of one bank, then the next bank (long sequential runs);
        row_column_bank_channel: banks interleave every `interleave_bytes` granule.
        """
        cfg = self.cfg
        banks = cfg.banks_per_channel
        if not self._bank_interleaved:
            segment = local // cfg.row_bytes
            return segment % banks, segment // banks, (segment + 1) * cfg.row_bytes
        granule = local // cfg.interleave_bytes
        within_bank = (granule // banks) * cfg.interleave_bytes
        return granule % banks, within_bank // cfg.row_bytes, (granule + 1) * cfg.interleave_bytes

    # ------------------------------------------------------------ timing

    def access(self, now_ps: int, addr: int, nbytes: int, is_write: bool) -> int:
        finish = now_ps
        for ch, lo, hi in self.channel_ranges(addr, nbytes):
            end = self.serve(ch, lo, hi, now_ps, is_write)
            if end > finish:
                finish = end
        _count(self.counters, nbytes, is_write, latency_ps=finish - now_ps)
        return finish

    def _refresh(self, ch: _Channel, time_ps: int) -> None:
        """All-bank refresh once per tREFI: rows close and the channel is blocked for tRFC.

        A refresh that falls due while the bus is streaming is postponed until the bus frees up (JEDEC
        allows postponing), so a busy channel pays the full tRFC; an idle one pays nothing.
        """
        epoch_start = time_ps // self._trefi * self._trefi
        ch.next_refresh = epoch_start + self._trefi
        blocked_until = max(epoch_start, ch.bus_free) + self._trfc
        ch.bus_free = max(ch.bus_free, blocked_until)
        # in place: serve() holds references to these lists
        ch.open_row[:] = self._all_closed
        ch.bank_ready[:] = [ready if ready > blocked_until else blocked_until for ready in ch.bank_ready]

    def bus_free_ps(self, channel: int) -> int:
        return self._state[channel].bus_free

    def is_row_hit(self, channel: int, local_addr: int) -> bool:
        bank, row, _ = self._locate(local_addr)
        return self._state[channel].open_row[bank] == row

    @property
    def miss_lead_ps(self) -> int:
        """How long before its data a row miss must be started (precharge, activate, CAS)."""
        return self._trp + self._trcd + self._tcl

    def serve(self, index: int, lo: int, hi: int, now_ps: int, is_write: bool = False) -> int:
        """Book channel-local bytes [lo, hi) on channel `index` no earlier than now; return last-byte time.

        The loop walks the row segments of the range; it is the simulator's hottest code, so the
        timing state lives in locals and max() is spelled out.
        """
        ch = self._state[index]
        closed_page = self.cfg.page_policy == "closed"
        burst_bytes, tburst, tcl, trcd = self._burst_bytes, self._tburst, self._tcl, self._trcd
        trp, tras, trrd, tfaw = self._trp, self._tras, self._trrd, self._tfaw
        open_row, bank_ready, last_act, history = ch.open_row, ch.bank_ready, ch.last_act, ch.act_history
        hits = misses = bursts_total = 0
        pos = lo
        data_end = now_ps
        first_data = -1
        while pos < hi:
            if (now_ps if now_ps > ch.bus_free else ch.bus_free) >= ch.next_refresh:
                self._refresh(ch, max(now_ps, ch.bus_free))
            bank, row, run_end = self._locate(pos)
            seg_end = hi if hi < run_end else run_end
            bursts = (seg_end - 1) // burst_bytes - pos // burst_bytes + 1
            ready = bank_ready[bank]
            # row-hit rate is per column access (burst): a miss opens the row for the rest of the run
            if open_row[bank] == row:
                hits += bursts
                column_ready = now_ps if now_ps > ready else ready
            else:
                misses += 1
                hits += bursts - 1
                if open_row[bank] >= 0:  # precharge the open row first
                    act = max(now_ps, ready, last_act[bank] + tras) + trp
                else:
                    act = now_ps if now_ps > ready else ready
                if history:
                    act = max(act, history[-1] + trrd)
                    if len(history) >= 4:
                        act = max(act, history[-4] + tfaw)
                        del history[0]
                history.append(act)
                last_act[bank] = act
                column_ready = act + trcd
                open_row[bank] = row
            bus_free = ch.bus_free
            data_start = column_ready + tcl
            if bus_free > data_start:
                data_start = bus_free
            data_end = data_start + bursts * tburst
            if first_data < 0:
                first_data = data_start
            ch.bus_free = data_end
            bursts_total += bursts
            if closed_page:  # auto-precharge after the access
                open_row[bank] = -1
                bank_ready[bank] = max(data_end - tcl, last_act[bank] + tras) + trp
            else:
                bank_ready[bank] = data_end - tcl
            pos = seg_end
        counters = self.counters
        counters.row_hits += hits
        counters.row_misses += misses
        counters.bursts += bursts_total
        counters.channel_busy_ps[index] += bursts_total * tburst
        if self._trace.enabled:
            self._trace.span("dram", f"channel {index}", _direction(is_write), first_data, data_end,
                             {"bytes": hi - lo})
        return data_end


def _direction(is_write: bool) -> str:
    return "write" if is_write else "read"


def count_bytes(counters: MemoryCounters, nbytes: int, is_write: bool) -> None:
    counters.requests += 1
    if is_write:
        counters.bytes_written += nbytes
    else:
        counters.bytes_read += nbytes


def _count(counters: MemoryCounters, nbytes: int, is_write: bool, latency_ps: int) -> None:
    counters.requests += 1
    if is_write:
        counters.bytes_written += nbytes
    else:
        counters.bytes_read += nbytes
        counters.read_latencies_ps.append(latency_ps)
