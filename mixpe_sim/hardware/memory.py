"""Off-chip memory timing as "busy-until" arithmetic: one call per DMA transfer, no per-cycle events.

`access(now_ps, addr, nbytes, is_write)` books the transfer on the memory's resources and returns the
time its last byte arrives. Requests are served in the order they are issued (FCFS per channel).
A DRAM transfer is split into per-channel transactions by the address mapping; each transaction
walks its row segments, paying precharge/activate on row misses and burst time on the data bus, so
achieved bandwidth emerges from row hits, bank parallelism and refresh rather than being a constant.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mixpe_sim.config.models import (
    DramMemoryConfig,
    FlatMemoryConfig,
    IdealMemoryConfig,
    MemoryConfig,
)
from mixpe_sim.units import PS_PER_S, ceil_div, ns_to_ps


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


class IdealMemory:
    """Every transfer completes the moment it is issued."""

    def __init__(self, cfg: IdealMemoryConfig) -> None:
        self.cfg = cfg
        self.channels = 1
        self.counters = MemoryCounters(channel_busy_ps=[0])

    def access(self, now_ps: int, addr: int, nbytes: int, is_write: bool) -> int:
        _count(self.counters, nbytes, is_write, latency_ps=0)
        return now_ps


class FlatMemory:
    """One link of fixed bandwidth plus a fixed latency (the MixPE authors' model)."""

    def __init__(self, cfg: FlatMemoryConfig) -> None:
        self.cfg = cfg
        self.channels = 1
        self._latency_ps = ns_to_ps(cfg.latency_ns)
        self._bus_free_ps = 0
        self.counters = MemoryCounters(channel_busy_ps=[0])

    def access(self, now_ps: int, addr: int, nbytes: int, is_write: bool) -> int:
        start = max(now_ps, self._bus_free_ps)
        duration = ceil_div(nbytes * PS_PER_S, self.cfg.bw_bytes_per_s)
        self._bus_free_ps = start + duration
        self.counters.channel_busy_ps[0] += duration
        finish = self._bus_free_ps + self._latency_ps
        _count(self.counters, nbytes, is_write, latency_ps=finish - now_ps)
        return finish


class _Channel:
    """Mutable timing state of one DRAM channel."""

    __slots__ = ("act_history", "bank_ready", "bus_free", "last_act", "open_row", "refresh_epoch")

    def __init__(self, banks: int) -> None:
        self.bus_free = 0
        self.open_row = [-1] * banks
        self.bank_ready = [0] * banks  # earliest next column command (or ACT when closed)
        self.last_act = [-(10**15)] * banks
        self.act_history: list[int] = []  # recent ACT times, for tRRD / tFAW
        self.refresh_epoch = 0


class DramMemory:
    """Channels x banks with row buffers, JEDEC-style timing, address interleave and refresh."""

    def __init__(self, cfg: DramMemoryConfig) -> None:
        self.cfg = cfg
        t = cfg.timing
        self.channels = cfg.channels
        self._trcd, self._tcl, self._trp = ns_to_ps(t.trcd_ns), ns_to_ps(t.tcl_ns), ns_to_ps(t.trp_ns)
        self._tras, self._trrd, self._tfaw = ns_to_ps(t.tras_ns), ns_to_ps(t.trrd_ns), ns_to_ps(t.tfaw_ns)
        self._trefi, self._trfc = ns_to_ps(t.trefi_ns), ns_to_ps(t.trfc_ns)
        # burst_length beats at data_rate_mtps transfers per second per pin
        self._tburst = round(cfg.burst_length * 1e6 / cfg.data_rate_mtps)
        self._burst_bytes = cfg.burst_bytes
        self._state = [_Channel(cfg.banks_per_channel) for _ in range(cfg.channels)]
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
        """Channel-local address -> (bank, row, end of the run that stays in that bank row)."""
        cfg = self.cfg
        if cfg.mapping == "row_bank_column_channel":
            segment = local // cfg.row_bytes
            return segment % cfg.banks_per_channel, segment // cfg.banks_per_channel, (segment + 1) * cfg.row_bytes
        granule = local // cfg.interleave_bytes  # row_column_bank_channel: banks interleave per granule
        within_bank = (granule // cfg.banks_per_channel) * cfg.interleave_bytes
        return (granule % cfg.banks_per_channel, within_bank // cfg.row_bytes,
                (granule + 1) * cfg.interleave_bytes)

    # ------------------------------------------------------------ timing

    def access(self, now_ps: int, addr: int, nbytes: int, is_write: bool) -> int:
        finish = now_ps
        for ch, lo, hi in self.channel_ranges(addr, nbytes):
            finish = max(finish, self._serve(ch, lo, hi, now_ps))
        _count(self.counters, nbytes, is_write, latency_ps=finish - now_ps)
        return finish

    def _refresh_if_due(self, ch: _Channel, time_ps: int) -> None:
        """All-bank refresh once per tREFI: rows close and the channel is blocked for tRFC.

        A refresh that falls due while the bus is streaming is postponed until the bus frees up (JEDEC
        allows postponing), so a busy channel pays the full tRFC; an idle one pays nothing.
        """
        if time_ps < (ch.refresh_epoch + 1) * self._trefi:
            return
        ch.refresh_epoch = time_ps // self._trefi
        start = max(ch.refresh_epoch * self._trefi, ch.bus_free)
        blocked_until = start + self._trfc
        ch.bus_free = max(ch.bus_free, blocked_until)
        for bank in range(len(ch.open_row)):
            ch.open_row[bank] = -1
            if ch.bank_ready[bank] < blocked_until:
                ch.bank_ready[bank] = blocked_until

    def _activate_time(self, ch: _Channel, bank: int, now_ps: int) -> int:
        if ch.open_row[bank] >= 0:  # precharge the open row first
            precharge = max(now_ps, ch.bank_ready[bank], ch.last_act[bank] + self._tras)
            act = precharge + self._trp
        else:
            act = max(now_ps, ch.bank_ready[bank])
        history = ch.act_history
        if history:
            act = max(act, history[-1] + self._trrd)
            if len(history) >= 4:
                act = max(act, history[-4] + self._tfaw)
        history.append(act)
        if len(history) > 4:
            del history[0]
        ch.last_act[bank] = act
        return act

    def _serve(self, index: int, lo: int, hi: int, now_ps: int) -> int:
        ch = self._state[index]
        counters = self.counters
        closed_page = self.cfg.page_policy == "closed"
        burst_bytes, tburst, tcl = self._burst_bytes, self._tburst, self._tcl
        pos = lo
        data_end = now_ps
        while pos < hi:
            self._refresh_if_due(ch, max(now_ps, ch.bus_free))
            bank, row, run_end = self._locate(pos)
            seg_end = min(hi, run_end)
            bursts = (seg_end - 1) // burst_bytes - pos // burst_bytes + 1
            # row-hit rate is per column access (burst): a miss opens the row for the rest of the run
            if ch.open_row[bank] == row:
                counters.row_hits += bursts
                column_ready = max(now_ps, ch.bank_ready[bank])
            else:
                counters.row_misses += 1
                counters.row_hits += bursts - 1
                column_ready = self._activate_time(ch, bank, now_ps) + self._trcd
                ch.open_row[bank] = row
            data_start = max(column_ready + tcl, ch.bus_free)
            data_end = data_start + bursts * tburst
            ch.bus_free = data_end
            counters.channel_busy_ps[index] += bursts * tburst
            counters.bursts += bursts
            if closed_page:  # auto-precharge after the access
                ch.open_row[bank] = -1
                ch.bank_ready[bank] = max(data_end - tcl, ch.last_act[bank] + self._tras) + self._trp
            else:
                ch.bank_ready[bank] = data_end - tcl
            pos = seg_end
        return data_end


def _count(counters: MemoryCounters, nbytes: int, is_write: bool, latency_ps: int) -> None:
    counters.requests += 1
    if is_write:
        counters.bytes_written += nbytes
    else:
        counters.bytes_read += nbytes
        counters.read_latencies_ps.append(latency_ps)


MemoryModel = IdealMemory | FlatMemory | DramMemory


def build_memory(cfg: MemoryConfig) -> MemoryModel:
    if isinstance(cfg, DramMemoryConfig):
        return DramMemory(cfg)
    if isinstance(cfg, FlatMemoryConfig):
        return FlatMemory(cfg)
    return IdealMemory(cfg)
