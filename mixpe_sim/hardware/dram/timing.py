"""One DRAM channel's command timing, computed per run of bursts ("busy-until"), never per cycle.

A channel serves a transfer's share as a run of bursts in its local address space. The mapping cuts the
run into row segments: a segment holds one open row in each of its `ways` banks (one per bank group for
`row_bank_column_bankgroup`, every bank for `row_column_bank`, a single bank for `row_bank_column`) and
its bursts rotate over the ways. Per segment the first visit of each way is timed explicitly (row hit,
or precharge + activate under tRAS, tRP, tRC, tRRD_S/L, tFAW, refresh), the rest in closed form: with
bank groups rotating, column commands follow each other at tCCD_S (tCCD_L is met because a bank group
comes back only every `ways` commands); with one bank they follow at tCCD_L. Read/write turnaround
(tWTR_S/L, tRTW), write recovery (tWR), read-to-precharge (tRTP) and the data bus are respected. The
reference `serve_by_burst` times the same commands one burst at a time; tests hold the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass

from mixpe_sim.config.models import DramMemoryConfig
from mixpe_sim.units import ns_to_ps

NEVER = -(10**18)  # "long ago": a constraint that no longer binds


@dataclass(frozen=True, slots=True)
class ChannelGeometry:
    """Where a channel-local burst index lands: segment, way, bank, row (pure arithmetic).

    Banks are numbered group-major (bank // banks_per_group is its bank group). A segment's banks depend
    only on `segment % period`; its row is `segment // period`.
    """

    bank_groups: int
    banks_per_group: int
    bursts_per_row: int
    ways: int  # banks of one segment, visited in rotation burst by burst
    period: int  # segments before the bank pattern repeats with the next row
    way_banks: tuple[tuple[int, ...], ...]  # per segment % period: the bank of each way
    way_groups: tuple[tuple[int, ...], ...]  # per segment % period: the bank group of each way

    @classmethod
    def of(cls, cfg: DramMemoryConfig) -> ChannelGeometry:
        groups, per_group = cfg.bank_groups, cfg.banks_per_group
        banks = groups * per_group
        if cfg.mapping == "row_bank_column_bankgroup":  # way = bank group; the bank in it moves per segment
            tables = [tuple(way * per_group + index for way in range(groups)) for index in range(per_group)]
        elif cfg.mapping == "row_column_bank":  # every bank a way; consecutive ways alternate bank groups
            tables = [tuple((way % groups) * per_group + way // groups for way in range(banks))]
        else:  # row_bank_column: one bank per segment; consecutive rows go to consecutive bank groups
            tables = [((index % groups) * per_group + index // groups,) for index in range(banks)]
        return cls(groups, per_group, cfg.row_bytes // cfg.burst_bytes, len(tables[0]), len(tables),
                   tuple(tables), tuple(tuple(bank // per_group for bank in t) for t in tables))

    @property
    def banks(self) -> int:
        return self.bank_groups * self.banks_per_group

    @property
    def segment_bursts(self) -> int:
        return self.ways * self.bursts_per_row

    def bank_row(self, segment: int, way: int) -> tuple[int, int]:
        return self.way_banks[segment % self.period][way], segment // self.period


@dataclass(frozen=True, slots=True)
class TimingPs:
    """The timing parameters of one channel in whole picoseconds."""

    cl: int
    cwl: int
    rcd: int
    rp: int
    ras: int
    rc: int
    ccd_s: int
    ccd_l: int
    rrd_s: int
    rrd_l: int
    faw: int
    wtr_s: int
    wtr_l: int
    rtw: int
    rtp: int
    wr: int
    rfc: int
    refi: int
    rfcpb: int
    burst: int  # one burst on the data bus: burst_length / data rate

    @classmethod
    def of(cls, cfg: DramMemoryConfig) -> TimingPs:
        t = cfg.timing
        return cls(
            cl=ns_to_ps(t.tcl_ns), cwl=ns_to_ps(t.tcwl_ns), rcd=ns_to_ps(t.trcd_ns), rp=ns_to_ps(t.trp_ns),
            ras=ns_to_ps(t.tras_ns), rc=ns_to_ps(t.trc_ns), ccd_s=ns_to_ps(t.tccd_s_ns),
            ccd_l=ns_to_ps(t.tccd_l_ns), rrd_s=ns_to_ps(t.trrd_s_ns), rrd_l=ns_to_ps(t.trrd_l_ns),
            faw=ns_to_ps(t.tfaw_ns), wtr_s=ns_to_ps(t.twtr_s_ns), wtr_l=ns_to_ps(t.twtr_l_ns),
            rtw=ns_to_ps(t.trtw_ns), rtp=ns_to_ps(t.trtp_ns), wr=ns_to_ps(t.twr_ns), rfc=ns_to_ps(t.trfc_ns),
            refi=ns_to_ps(t.trefi_ns), rfcpb=ns_to_ps(t.trfcpb_ns),
            burst=round(cfg.burst_length * 1e6 / cfg.data_rate_mtps))


@dataclass
class ChannelStats:
    """Command counts of one timed channel (multiplied by the channels it stands for in lockstep)."""

    acts: int = 0
    row_hits: int = 0  # bursts that found their row open
    row_misses: int = 0  # bursts that had to open their row (one per activate)
    bursts: int = 0
    busy_ps: int = 0  # data bus carrying data
    precharged_ps: int = 0  # all banks closed (precharge standby)
    refresh_stalls: int = 0  # all-bank refreshes the traffic had to wait for


class ChannelTiming:
    """Timing state of one channel: banks, bank groups, activate window, bus, refresh."""

    def __init__(self, cfg: DramMemoryConfig) -> None:
        self.geo = ChannelGeometry.of(cfg)
        self.t = TimingPs.of(cfg)
        banks = self.geo.banks
        self.closed_page = cfg.page_policy == "closed"
        self.per_bank_refresh = cfg.refresh == "per_bank"
        self.bank_group = [bank // cfg.banks_per_group for bank in range(banks)]
        self.open_row = [-1] * banks
        self.act_time = [NEVER] * banks  # last ACT
        self.col_ready = [0] * banks  # ACT + tRCD of the open row
        self.pre_allowed = [0] * banks  # earliest PRE of the open row (tRAS, tRTP, tWR)
        self.act_ready = [0] * banks  # earliest ACT when closed (PRE + tRP, refresh end)
        self.refresh_seen = [0] * banks  # per-bank refresh: the last due time accounted for
        self.bus_free = 0
        self.last_col = NEVER  # last column command
        self.last_col_group = -1
        self.group_col = [NEVER] * cfg.bank_groups  # last column command per bank group
        self.last_was_write = False
        self.last_write_end = NEVER  # end of the last write data (tWTR)
        self.last_write_group = -1
        self.last_read_col = NEVER  # last READ (tRTW)
        self._acts = [NEVER] * 4  # ring of the last four ACTs (tRRD, tFAW)
        self._act_slot = 0
        self.last_act_group = -1
        self.next_refresh = self.t.refi
        self.closed_since = 0  # all banks closed since (while open_rows == 0)
        self.open_rows = 0
        self.stats = ChannelStats()
        self.row_misses = 0  # bursts that opened their row (= activates); folded into stats at the end
        self._times = [0] * self.geo.ways  # per way: its last column command of the current segment
        # the segment whose every way is open and ready (fast path), and its last run not yet written
        # into group_col / pre_allowed: (phase, first command, bursts, spacing, ways, write?)
        self._hot_segment = -1
        self._hot_banks: tuple[int, ...] = ()
        self._hot_groups: tuple[int, ...] = ()
        self._hot_ready = 0
        self._lazy: tuple[int, int, int, int, int, bool] | None = None
        self._repeat_step = self._closed_form_step()

    def _closed_form_step(self) -> int:
        """Spacing of the commands after each way's first (0: no closed form, time them one by one).

        Rotating bank groups: a group comes back every min(ways, groups) commands, so tCCD_S is the
        spacing when that many tCCD_S cover tCCD_L. One way: every command in one group, tCCD_L.
        """
        t, geo = self.t, self.geo
        if geo.ways == 1 or geo.bank_groups == 1:
            return max(t.ccd_l, t.ccd_s)
        return t.ccd_s if min(geo.ways, geo.bank_groups) * t.ccd_s >= t.ccd_l else 0

    # ------------------------------------------------------------------ the run of bursts

    def serve(self, first_burst: int, bursts: int, now: int, is_write: bool) -> tuple[int, int]:
        """Book `bursts` consecutive local bursts from `first_burst`, requested at `now`.

        Returns (first data on the bus, end of the last data).
        """
        seg_bursts = self.geo.segment_bursts
        pos, end = first_burst, first_burst + bursts
        first_data = -1
        data_end = now
        while pos < end:
            segment, phase = divmod(pos, seg_bursts)
            run = end - pos if end - pos < seg_bursts - phase else seg_bursts - phase
            if not self.per_bank_refresh and (now if now > self.bus_free else self.bus_free) >= self.next_refresh:
                self._all_bank_refresh(now)
            if segment == self._hot_segment:
                start, data_end = self._hot_run(phase, run, now, is_write)
            else:
                start, data_end = self._segment(segment, phase, run, now, is_write)
            if first_data < 0:
                first_data = start
            pos += run
        stats = self.stats
        stats.bursts += bursts
        stats.busy_ps += bursts * self.t.burst
        return first_data, data_end

    def serve_by_burst(self, first_burst: int, bursts: int, now: int, is_write: bool) -> tuple[int, int]:
        """Reference for `serve`: every burst timed on its own (the closed form of the repeats is not
        used). Refresh is looked at when a segment starts, as in `serve`. Slow; tests only."""
        seg_bursts = self.geo.segment_bursts
        first_data, data_end = -1, now
        for pos in range(first_burst, first_burst + bursts):
            segment, phase = divmod(pos, seg_bursts)
            if (phase == 0 or pos == first_burst) and not self.per_bank_refresh and \
                    (now if now > self.bus_free else self.bus_free) >= self.next_refresh:
                self._all_bank_refresh(now)
            start, data_end = self._segment(segment, phase, 1, now, is_write)
            if first_data < 0:
                first_data = start
        self.stats.bursts += bursts
        self.stats.busy_ps += bursts * self.t.burst
        return first_data, data_end

    def _segment(self, segment: int, phase: int, run: int, now: int, is_write: bool) -> tuple[int, int]:
        """Column commands of `run` bursts of one segment from its burst `phase`: each way's first
        command explicitly, the repeats in closed form (`_repeat_step`), then when each bank may
        precharge. The hottest DRAM code: locals and explicit comparisons on purpose."""
        if self._lazy is not None:
            self._settle()
        t, geo = self.t, self.geo
        index = segment % geo.period
        banks, groups = geo.way_banks[index], geo.way_groups[index]
        row = segment // geo.period
        ways = len(banks)
        latency = t.cwl if is_write else t.cl
        earliest = self.bus_free - latency  # its data must not start before the bus is free
        if earliest < now:
            earliest = now
        if is_write:
            if earliest < self.last_read_col + t.rtw:
                earliest = self.last_read_col + t.rtw
            write_end = write_group = NEVER
        else:  # tWTR: tWTR_L in the last write's bank group, tWTR_S in the others
            write_end, write_group = self.last_write_end, self.last_write_group
        open_row, col_ready, group_col, times = self.open_row, self.col_ready, self.group_col, self._times
        ccd_s, ccd_l = t.ccd_s, t.ccd_l
        col, group = self.last_col, self.last_col_group
        visits = run if run < ways else ways
        misses = 0
        first_col = 0
        latest_ready = 0
        way = phase % ways
        for j in range(visits):  # the first command to each way: opens its row if needed
            bank, way_group = banks[way], groups[way]
            if open_row[bank] == row:
                ready = col_ready[bank]
            else:
                ready = self._open(bank, row, now)
                misses += 1
            if ready > latest_ready:
                latest_ready = ready
            col += ccd_l if way_group == group else ccd_s
            if col < earliest:
                col = earliest
            if col < ready:
                col = ready
            if col < group_col[way_group] + ccd_l:
                col = group_col[way_group] + ccd_l
            if col < write_end + (t.wtr_l if way_group == write_group else t.wtr_s):
                col = write_end + (t.wtr_l if way_group == write_group else t.wtr_s)
            if j == 0:
                first_col = col
            group_col[way_group] = times[way] = col
            group = way_group
            way = way + 1 if way + 1 < ways else 0
        if run > visits:
            col, group = self._repeats(banks, groups, phase, run, visits, col, group)
        self.last_col, self.last_col_group = col, group
        hold = t.cwl + t.burst + t.wr if is_write else t.rtp  # last column -> earliest precharge
        pre_allowed = self.pre_allowed
        way = phase % ways
        for _ in range(visits):
            bank = banks[way]
            if times[way] + hold > pre_allowed[bank]:
                pre_allowed[bank] = times[way] + hold
            if self.closed_page:
                self._precharge(bank, pre_allowed[bank])
            way = way + 1 if way + 1 < ways else 0
        data_end = col + latency + t.burst
        self.bus_free = data_end
        self.last_was_write = is_write
        if is_write:
            self.last_write_end, self.last_write_group = data_end, group
        else:
            self.last_read_col = col
        self.row_misses += misses
        if visits == ways and self._repeat_step == t.ccd_s and not self.closed_page:
            # every way of the segment is open now: later runs in it take the fast path
            self._hot_segment = segment
            self._hot_banks, self._hot_groups = banks, groups
            self._hot_ready = latest_ready
        return first_col + latency, data_end

    def _hot_run(self, phase: int, run: int, now: int, is_write: bool) -> tuple[int, int]:
        """A run in the segment whose every way is open and ready (rotating bank groups, commands at
        tCCD_S): the first command is the only one any constraint can push, the rest follow at tCCD_S
        (the same times `_segment` gives: once the first is placed, a bank group comes back only after
        tCCD_S x ways >= tCCD_L and no row waits; a read that tWTR could hold back takes `_segment`).
        Which bank group's and bank's last command is when is settled lazily (`_settle`)."""
        t = self.t
        latency = t.cwl if is_write else t.cl
        groups = self._hot_groups
        ways = len(groups)
        if self._lazy is not None and self._lazy[5] != is_write:
            self._settle()
        first_group = groups[phase % ways]
        col = self.last_col + (t.ccd_l if first_group == self.last_col_group else t.ccd_s)
        bound = self.bus_free - latency
        if bound < now:
            bound = now
        if bound < self._hot_ready:
            bound = self._hot_ready
        if is_write:
            if bound < self.last_read_col + t.rtw:
                bound = self.last_read_col + t.rtw
        elif bound < self.last_write_end + t.wtr_l:  # tWTR could still hold some command back
            return self._segment(self._hot_segment, phase, run, now, is_write)
        lazy = self._lazy  # (always a run of the hot segment: any other segment settles it first)
        group_last = self.group_col[first_group] if lazy is None else self._lazy_group_last(first_group)
        if col < group_last + t.ccd_l:
            col = group_last + t.ccd_l
        if col < bound:
            col = bound
        if lazy is not None and col == self.last_col + t.ccd_s and phase == (lazy[0] + lazy[2]) % ways:
            self._lazy = (lazy[0], lazy[1], lazy[2] + run, lazy[3], ways, is_write)  # one arithmetic sequence
        else:
            if lazy is not None:
                self._settle()
            self._lazy = (phase, col, run, t.ccd_s, ways, is_write)
        last = col + (run - 1) * t.ccd_s
        self.last_col, self.last_col_group = last, groups[(phase + run - 1) % ways]
        data_end = last + latency + t.burst
        self.bus_free = data_end
        self.last_was_write = is_write
        if is_write:
            self.last_write_end, self.last_write_group = data_end, self.last_col_group
        else:
            self.last_read_col = last
        return col + latency, data_end

    def _lazy_group_last(self, group: int) -> int:
        """The last command in `group` so far, when the unsettled run may hold it."""
        phase, col, run, step, ways, _ = self._lazy  # type: ignore[misc]
        best = self.group_col[group]
        for j in range(min(run, ways)):
            if self._hot_groups[(phase + j) % ways] == group:
                when = col + (j + (run - 1 - j) // ways * ways) * step
                if when > best:
                    best = when
        return best

    def _settle(self) -> None:
        """Write the unsettled fast run's last command per bank group and earliest precharge per bank."""
        phase, col, run, step, ways, is_write = self._lazy  # type: ignore[misc]
        self._lazy = None
        t = self.t
        hold = t.cwl + t.burst + t.wr if is_write else t.rtp
        banks, groups, group_col, pre_allowed = self._hot_banks, self._hot_groups, self.group_col, self.pre_allowed
        for j in range(min(run, ways)):
            way = (phase + j) % ways
            when = col + (j + (run - 1 - j) // ways * ways) * step
            if when > group_col[groups[way]]:
                group_col[groups[way]] = when
            if when + hold > pre_allowed[banks[way]]:
                pre_allowed[banks[way]] = when + hold

    def _repeats(self, banks: tuple[int, ...], groups: tuple[int, ...], phase: int, run: int, visits: int,
                 col: int, group: int) -> tuple[int, int]:
        """Commands after each way's first one: every row is open, only the column spacing binds.
        Returns the last command and its bank group; `_times` gets each way's last command."""
        t, ways, times, group_col = self.t, len(banks), self._times, self.group_col
        step = self._repeat_step
        if not step:  # no closed form for this combination of mapping and timing: one by one
            for j in range(visits, run):
                way = (phase + j) % ways
                way_group = groups[way]
                col = max(group_col[way_group] + t.ccd_l, col + (t.ccd_l if way_group == group else t.ccd_s))
                group_col[way_group] = times[way] = col
                group = way_group
            return col, group
        base = visits - 1  # index of the command at `col`
        for j in range(visits):
            last = j + (run - 1 - j) // ways * ways
            if last > j:
                way = (phase + j) % ways
                times[way] = when = col + (last - base) * step
                if when > group_col[groups[way]]:
                    group_col[groups[way]] = when
        return col + (run - visits) * step, groups[(phase + run - 1) % ways]

    # ------------------------------------------------------------------ rows and activates

    def _open(self, bank: int, row: int, now: int) -> int:
        """Open `row` in `bank`: precharge the row it holds (tRAS, tRTP/tWR, then tRP), activate under
        tRC, tRRD_S/L and tFAW; returns when its columns can be read (+ tRCD)."""
        t = self.t
        if self.per_bank_refresh and now // t.refi * t.refi > self.refresh_seen[bank]:
            self._bank_refresh(bank, now)
        if self.open_row[bank] >= 0:
            self._precharge(bank, now if now > self.pre_allowed[bank] else self.pre_allowed[bank])
        group = self.bank_group[bank]
        act = self.act_time[bank] + t.rc
        if act < now:
            act = now
        if act < self.act_ready[bank]:
            act = self.act_ready[bank]
        acts, slot = self._acts, self._act_slot  # ring of the last four ACTs; acts[slot] is the oldest
        previous = acts[slot - 1] + (t.rrd_l if group == self.last_act_group else t.rrd_s)
        if act < previous:
            act = previous
        if act < acts[slot] + t.faw:
            act = acts[slot] + t.faw
        acts[slot] = act
        self._act_slot = (slot + 1) % 4
        self.last_act_group = group
        if not self.open_rows and act > self.closed_since:
            self.stats.precharged_ps += act - self.closed_since
        self.open_rows += 1
        self.open_row[bank] = row
        self.act_time[bank] = act
        self.col_ready[bank] = act + t.rcd
        self.pre_allowed[bank] = act + t.ras
        return act + t.rcd

    def _precharge(self, bank: int, when: int) -> None:
        self._hot_segment = -1
        self.open_row[bank] = -1
        if when + self.t.rp > self.act_ready[bank]:
            self.act_ready[bank] = when + self.t.rp
        self.open_rows -= 1
        if not self.open_rows:
            self.closed_since = when + self.t.rp

    # ------------------------------------------------------------------ refresh

    def _all_bank_refresh(self, now: int) -> None:
        """Once per tREFI: precharge all, then the channel is blocked for tRFC. A refresh due while data
        streams waits for the bus (JEDEC allows postponing), so a busy channel pays it in full; one that
        fell due while the channel was idle cost the traffic nothing and is not replayed."""
        t = self.t
        current = now if now > self.bus_free else self.bus_free
        if current < self.next_refresh:
            return
        due = current // t.refi * t.refi
        self.next_refresh = due + t.refi
        if self._lazy is not None:
            self._settle()
        self._hot_segment = -1
        start = max(due, self.bus_free)
        if not self.open_rows and start > self.closed_since:
            self.stats.precharged_ps += start - self.closed_since
        if self.open_rows:
            start = max(start, *(self.pre_allowed[b] for b, r in enumerate(self.open_row) if r >= 0)) + t.rp
            for bank, row in enumerate(self.open_row):
                if row >= 0:
                    self.open_row[bank] = -1
            self.open_rows = 0
        blocked_until = start + t.rfc
        self.closed_since = blocked_until
        self.act_ready = [ready if ready > blocked_until else blocked_until for ready in self.act_ready]
        self.bus_free = max(self.bus_free, blocked_until)
        self.stats.refresh_stalls += 1

    def _bank_refresh(self, bank: int, now: int) -> None:
        """Per-bank refresh, evaluated when the bank is next needed. Each bank is due once per tREFI; the
        controller refreshes it while it is idle (JEDEC lets a per-bank refresh be pulled in or
        postponed), so it costs the traffic time only when the bank's idle gap is shorter than tRFCpb.
        It is looked at on a row change only: a bank whose open row is hit again is left until then."""
        t = self.t
        window = now // t.refi * t.refi  # the latest due time
        if window <= self.refresh_seen[bank]:
            return
        self.refresh_seen[bank] = window
        if self.open_row[bank] >= 0:
            self._precharge(bank, self.pre_allowed[bank])
        start = max(self.act_ready[bank], window - t.refi)  # idle from the precharge, at most one period early
        end = start + t.rfcpb
        if end > self.act_ready[bank]:
            self.act_ready[bank] = end

    # ------------------------------------------------------------------ state queries

    def finish(self, end_ps: int) -> None:
        """Close the books at the end of the run: time since all banks closed is precharge standby."""
        if self._lazy is not None:
            self._settle()
        self.stats.acts = self.stats.row_misses = self.row_misses
        self.stats.row_hits = self.stats.bursts - self.row_misses
        if not self.open_rows and end_ps > self.closed_since:
            self.stats.precharged_ps += end_ps - self.closed_since
            self.closed_since = end_ps

    def is_row_hit(self, first_burst: int) -> bool:
        segment, phase = divmod(first_burst, self.geo.segment_bursts)
        bank, row = self.geo.bank_row(segment, phase % self.geo.ways)
        return self.open_row[bank] == row

    @property
    def miss_lead_ps(self) -> int:
        """How long before its data a row miss must be started (precharge, activate, CAS)."""
        return self.t.rp + self.t.rcd + self.t.cl
