"""DRAM: channels striped by `interleave_bytes`, each channel timed by hardware/dram/timing.py.

A DMA transfer is one contiguous address range. Its bytes spread over the channels granule by granule,
so every channel gets the same share to within one granule and walks the same rows of the same banks.

- `channel_model: independent` times every channel on its own: the transfer is split into one
  transaction per channel it touches, and completes when the last channel has delivered.
- `channel_model: lockstep` (default) uses that symmetry: one representative channel is timed with
  the transfer's average share, ceil((bursts - prepaid) / channels) bursts from the local address of
  the first byte; the rounding is carried to the next transfer ("prepaid"), so the bursts served add up
  exactly. The command counts are the representative's times the channels. A transfer that touches
  few channels still takes at least its busiest channel's bursts. On whole-stripe transfers the two
  models give the same times bit for bit; on LLM steps within 1.1 % (docs/memory-validation.md).
"""

from __future__ import annotations

from mixpe_sim.config.models import DramMemoryConfig
from mixpe_sim.hardware.dram.timing import ChannelTiming
from mixpe_sim.hardware.memory import BusyUntilMemory, MemoryCounters, count_transfer, direction
from mixpe_sim.trace.sink import NULL_SINK, TraceSink


class DramMemory(BusyUntilMemory):
    def __init__(self, cfg: DramMemoryConfig, trace: TraceSink = NULL_SINK) -> None:
        self.cfg = cfg
        self._trace = trace
        self.channels = cfg.channels
        self.lockstep = cfg.channel_model == "lockstep"
        self._lockstep_lane = trace.lane("dram", f"channels x{cfg.channels} (lockstep)", ("bytes",))
        self._channel_lanes = [trace.lane("dram", f"channel {c}", ("bytes",)) for c in range(cfg.channels)]
        self._timings = [ChannelTiming(cfg) for _ in range(1 if self.lockstep else cfg.channels)]
        self._representative = self._timings[0]  # the channel lockstep mode times
        self._burst_bytes = cfg.burst_bytes
        self._granule_bursts = cfg.interleave_bytes // cfg.burst_bytes
        self._stripe_bursts = self._granule_bursts * cfg.channels  # one granule on every channel
        self._few_channels_bursts = (cfg.channels - 1) * self._granule_bursts  # more: every channel touched
        self._prepaid = 0  # channel bursts the representative served ahead of the transfers' shares
        self.counters = MemoryCounters(channel_busy_ps=[0] * cfg.channels)

    # ------------------------------------------------------------------ engine interface

    def access(self, now_ps: int, addr: int, nbytes: int, is_write: bool) -> int:
        """Book a transfer requested at `now_ps`; return when its last byte is on the bus."""
        if self.lockstep:
            return self._lockstep(now_ps, addr, nbytes, is_write)
        first, last = addr // self._burst_bytes, (addr + nbytes - 1) // self._burst_bytes
        finish = now_ps
        for channel, lo, hi in self.channel_ranges(addr, nbytes):
            end = self.serve_range(channel, lo, hi, now_ps, is_write)
            if end > finish:
                finish = end
        self._count(nbytes, last - first + 1, is_write, finish - now_ps)
        return finish

    def _lockstep(self, now: int, addr: int, nbytes: int, is_write: bool) -> int:
        """The representative channel serves the transfer's average share."""
        burst_bytes = self._burst_bytes
        first = addr // burst_bytes
        total = (addr + nbytes - 1) // burst_bytes - first + 1  # bursts over all channels
        need = total - self._prepaid
        timing = self._representative
        if need <= 0:  # carried by bursts already served for earlier transfers
            self._prepaid = -need
            start = finish = now if now > timing.bus_free else timing.bus_free
        else:
            channels, granule = self.channels, self._granule_bursts
            share = -(-need // channels)
            self._prepaid = share * channels - need
            start, finish = timing.serve(first // self._stripe_bursts * granule + first % granule, share, now,
                                         is_write)
            if total <= self._few_channels_bursts:  # it may span fewer channels than there are
                touched = (first + total - 1) // granule - first // granule + 1
                if touched < channels:  # then the busiest carries its own bursts
                    busiest = start + (-(-total // touched) - 1) * timing.t.ccd_s + timing.t.burst
                    if busiest > finish:
                        finish = busiest
        if self._trace.enabled:
            self._trace.slice(self._lockstep_lane, direction(is_write), start, finish, nbytes)
        counters = self.counters  # _count, inlined: once per transfer
        counters.requests += 1
        if is_write:
            counters.bytes_written += nbytes
            counters.write_bursts += total
        else:
            counters.bytes_read += nbytes
            counters.read_bursts += total
            counters.read_latencies_ps.append(finish - now)
        return finish

    def _count(self, nbytes: int, bursts: int, is_write: bool, latency_ps: int) -> None:
        counters = self.counters
        if is_write:
            counters.write_bursts += bursts
        else:
            counters.read_bursts += bursts
        count_transfer(counters, nbytes, is_write, latency_ps)

    # ------------------------------------------------------------------ independent channels

    def channel_ranges(self, addr: int, nbytes: int) -> list[tuple[int, int, int]]:
        """Split [addr, addr+nbytes) into (channel, local_start, local_end) byte ranges.

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

    def serve_range(self, channel: int, lo: int, hi: int, now_ps: int, is_write: bool) -> int:
        """Book channel-local bytes [lo, hi) on one channel (independent model); return the last byte."""
        first = lo // self._burst_bytes
        start, end = self._timings[channel].serve(first, (hi - 1) // self._burst_bytes - first + 1, now_ps, is_write)
        if self._trace.enabled:
            self._trace.slice(self._channel_lanes[channel], direction(is_write), start, end, hi - lo)
        return end

    def bus_free_ps(self, channel: int) -> int:
        return self._timings[channel].bus_free

    def is_row_hit(self, channel: int, local_addr: int) -> bool:
        return self._timings[channel].is_row_hit(local_addr // self._burst_bytes)

    @property
    def miss_lead_ps(self) -> int:
        return self._timings[0].miss_lead_ps

    # ------------------------------------------------------------------ after the run

    def finish(self, end_ps: int) -> None:
        """Fold the channels' command counts into the counters; refreshes run for the whole time."""
        scale = self.channels if self.lockstep else 1
        counters = self.counters
        for index, timing in enumerate(self._timings):
            timing.finish(end_ps)
            stats = timing.stats
            counters.acts += stats.acts * scale
            counters.row_hits += stats.row_hits * scale
            counters.row_misses += stats.row_misses * scale
            counters.precharged_ps += stats.precharged_ps * scale
            if self.lockstep:
                counters.channel_busy_ps = [stats.busy_ps] * self.channels
            else:
                counters.channel_busy_ps[index] = stats.busy_ps
        t = self._timings[0].t
        if self.cfg.refresh == "per_bank":
            # one per-bank refresh per bank per tREFI, staggered over the interval
            counters.bank_refreshes = self.channels * (end_ps * self.cfg.banks_per_channel // t.refi)
        else:
            counters.refreshes = self.channels * (end_ps // t.refi)
