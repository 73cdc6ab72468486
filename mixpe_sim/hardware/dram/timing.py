"""One DRAM channel's command timing, computed per run of bursts ("busy-until"), never per cycle.

A channel serves a transfer's share as a run of bursts in its local address space. The address mapping
cuts the run into segments. A segment is one row of a *row set*: the `ways` banks its bursts rotate over
(bank i of every bank group for `row_bank_column_bankgroup`, every bank for `row_column_bank`, a single
bank for `row_bank_column`). The controller opens and closes a row set as a unit: on a row miss it
precharges the set (tRAS, tRTP/tWR, then tRP) and activates its banks one after another in the order
the run visits them (tRC, tRRD_S/L, tFAW); each bank's columns wait for its own tRCD.

Column commands: consecutive ones to different bank groups are tCCD_S apart, to the same group tCCD_L.
With bank groups rotating and tCCD_L <= 2 tCCD_S (every JEDEC part here) a group's earlier command can
never be the binding constraint, so a run whose banks are ready is one arithmetic sequence at tCCD_S
(tCCD_L with one bank): closed form, O(1) per segment. Reads after writes wait tWTR_L in the write's
bank group and tWTR_S elsewhere, writes after reads tRTW; the data bus carries one burst per tBL.
Refresh: all-bank (channel blocked tRFC once per tREFI, postponed while data streams) or per-bank
(each bank once per tREFI, fitted into its idle time when it has enough).

`serve_by_burst` is the slow reference: every burst timed on its own, every bank group's last command
tracked; tests hold it equal to `serve`.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Final

from mixpe_sim.config.models import DramMemoryConfig
from mixpe_sim.units import ns_to_ps

NEVER: Final = -(10**18)  # "long ago": a constraint that no longer binds
FAR_FUTURE: Final = 10**18  # "never due"


@dataclass(frozen=True, slots=True)
class ChannelGeometry:
    """Where a channel-local burst index lands: segment, way, bank, row set, row (pure arithmetic).

    Banks are numbered group-major (bank // banks_per_group is its bank group). A segment's row set is
    `segment % sets`, its row `segment // sets`.
    """

    bank_groups: int
    banks_per_group: int
    bursts_per_row: int
    ways: int  # banks of one row set, visited in rotation burst by burst
    sets: int
    set_banks: tuple[tuple[int, ...], ...]  # per row set: the bank of each way
    set_groups: tuple[tuple[int, ...], ...]  # per row set: the bank group of each way

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

    burst_ps: int  # one burst on the data bus
    ways: int  # banks activated per row-set opening
    row_misses: int = 0  # bursts that had to open their row (the first burst of each row-set opening)
    bursts: int = 0
    precharged_ps: int = 0  # all banks closed (precharge standby)
    refresh_stalls: int = 0  # all-bank refreshes the traffic had to wait for

    @property
    def row_hits(self) -> int:
        return self.bursts - self.row_misses

    @property
    def acts(self) -> int:
        """Activates: each row-set opening activates every way of the set."""
        return self.row_misses * self.ways

    @property
    def busy_ps(self) -> int:
        """Data bus carrying data."""
        return self.bursts * self.burst_ps


class RowSet:
    """The state of one row set: the row its ways hold open, their ACTs, when they may be used again."""

    __slots__ = ("act", "act_ready", "first_way", "groups", "offsets", "pre_allowed", "ready", "refresh_seen",
                 "row")

    def __init__(self, groups: tuple[int, ...]) -> None:
        self.groups = groups  # the bank group of each way
        self.row = -1  # the open row (-1: closed)
        self.act = NEVER  # first ACT of its last opening (tRC: every bank in the same order)
        # its ACTs: the first at `act`, way (first_way + k) % ways at act + offsets[k]
        self.first_way = 0
        self.offsets: tuple[int, ...] = (0,) * len(groups)
        self.ready = 0  # every way ready (its last ACT + tRCD)
        self.pre_allowed = 0  # earliest PRE: tRAS after its ACTs, tRTP/tWR after its columns
        self.act_ready = 0  # earliest ACT while closed: PRE + tRP, refresh end
        self.refresh_seen = 0  # per-bank refresh: the last due time accounted for


class ChannelTiming:
    """Timing state of one channel: row sets, activate window, bus, turnaround, refresh."""

    def __init__(self, cfg: DramMemoryConfig) -> None:
        self.geo = geo = ChannelGeometry.of(cfg)
        self.t = t = TimingPs.of(cfg)
        # read on every transfer: plain attributes, not the geometry's properties
        self._segment_bursts, self._sets = geo.segment_bursts, geo.sets
        self._ways = geo.ways
        self._write_hold = t.cwl + t.burst + t.wr  # last write command to the earliest PRE
        ways = geo.ways
        self.closed_page = cfg.page_policy == "closed"
        self.per_bank_refresh = cfg.refresh == "per_bank"
        self.row_sets = [RowSet(groups) for groups in geo.set_groups]
        self.bus_free = 0
        self.last_col = NEVER  # last column command
        self.last_col_group = -1
        self.group_col = [NEVER] * cfg.bank_groups  # per bank group: last column (slow path only)
        self.last_write_end = NEVER  # end of the last write data (tWTR)
        self.last_write_group = -1
        self.last_read_col = NEVER  # last READ (tRTW)
        self._acts = [NEVER] * 4  # the last four ACTs, oldest first (tFAW); see _act_ring
        self._clean_base: int | None = None  # the first ACT of a clean opening whose ACTs the ring omits
        self._last_act = NEVER
        self.last_act_group = -1
        self.next_refresh = FAR_FUTURE if self.per_bank_refresh else t.refi  # the next all-bank refresh
        self.open_sets = 0
        self.closed_since = 0  # all banks closed since (while open_sets == 0)
        self.stats = ChannelStats(t.burst, geo.ways)
        # ACT offsets of an opening the previous ACTs do not hold back: tRRD_S apart (consecutive ways are
        # in different bank groups), every fifth at least tFAW after the first of its window
        offsets = [0]
        for k in range(1, ways):
            offsets.append(max(offsets[-1] + t.rrd_s, offsets[k - 4] + t.faw if k >= 4 else 0))
        self._clean_offsets = tuple(offsets)
        self._ring_from_clean = ways >= 4  # a clean opening's own ACTs fill the tFAW ring
        # four ways in four bank groups: an opening right after a clean one is clean too, shifted (_open)
        self._shifts_clean = ways == 4 and all(len(set(groups)) == 4 for groups in geo.set_groups)
        self._clean_span = offsets[-1]  # first to last ACT of a clean opening
        self._clean_ready, self._clean_pre = offsets[-1] + t.rcd, offsets[-1] + t.ras
        self._clean_ok = t.faw >= t.rrd_l  # then an ACT tFAW after the last one meets tRRD_L too
        self._ready_rises = all(b - a >= t.ccd_s for a, b in pairwise(offsets))
        # One bank: every command in one group (tCCD_L apart). Rotating groups with tCCD_L <= 2 tCCD_S:
        # no group's earlier command can bind (the docstring); otherwise every command is timed alone.
        if ways == 1 or geo.bank_groups == 1:
            self._step = max(t.ccd_l, t.ccd_s)
        else:
            self._step = t.ccd_s if t.ccd_l <= 2 * t.ccd_s else 0

    # ------------------------------------------------------------------ the run of bursts

    def serve(self, first_burst: int, bursts: int, now: int, is_write: bool) -> tuple[int, int]:
        """Book `bursts` consecutive local bursts from `first_burst`, requested at `now`.

        Returns (first data on the bus, end of the last data).
        """
        seg_bursts = self._segment_bursts
        segment, phase = divmod(first_burst, seg_bursts)
        self.stats.bursts += bursts
        if phase + bursts <= seg_bursts:  # one segment: most runs
            row_set = self.row_sets[segment % self._sets]
            bus_free = self.bus_free
            if (now if now > bus_free else bus_free) >= self.next_refresh:
                self._all_bank_refresh(now)
            elif row_set.row == segment // self._sets and not is_write:
                # the common case of `_segment`, inlined: a read of an open row set whose banks, the
                # bus and the turnaround are ready
                t = self.t
                groups = row_set.groups
                ways = self._ways
                first = self.last_col + (t.ccd_l if groups[phase % ways] == self.last_col_group else t.ccd_s)
                if first < now:
                    first = now
                if first < bus_free - t.cl:
                    first = bus_free - t.cl
                step = self._step
                if step and first >= row_set.ready and first >= self.last_write_end + t.wtr_l \
                        and not self.closed_page:
                    last = first + (bursts - 1) * step
                    self.last_col, self.last_col_group = last, groups[(phase + bursts - 1) % ways]
                    if last + t.rtp > row_set.pre_allowed:
                        row_set.pre_allowed = last + t.rtp
                    self.bus_free = data_end = last + t.cl + t.burst
                    self.last_read_col = last
                    return first + t.cl, data_end
            return self._segment(segment, phase, bursts, now, is_write, self._step)
        pos, end = first_burst, first_burst + bursts
        first_data = -1
        data_end = now
        while pos < end:
            segment, phase = divmod(pos, seg_bursts)
            run = end - pos if end - pos < seg_bursts - phase else seg_bursts - phase
            if (now if now > self.bus_free else self.bus_free) >= self.next_refresh:
                self._all_bank_refresh(now)
            start, data_end = self._segment(segment, phase, run, now, is_write, self._step)
            if first_data < 0:
                first_data = start
            pos += run
        return first_data, data_end

    def serve_by_burst(self, first_burst: int, bursts: int, now: int, is_write: bool) -> tuple[int, int]:
        """Reference for `serve`: every burst timed on its own, each bank group's last command
        honoured explicitly. Refresh is looked at when a segment starts, as in `serve`. Tests only."""
        seg_bursts = self._segment_bursts
        first_data, data_end = -1, now
        for pos in range(first_burst, first_burst + bursts):
            segment, phase = divmod(pos, seg_bursts)
            if (phase == 0 or pos == first_burst) and \
                    (now if now > self.bus_free else self.bus_free) >= self.next_refresh:
                self._all_bank_refresh(now)
            start, data_end = self._segment(segment, phase, 1, now, is_write, 0)
            if first_data < 0:
                first_data = start
        self.stats.bursts += bursts
        return first_data, data_end

    def _segment(self, segment: int, phase: int, run: int, now: int, is_write: bool,
                 step: int) -> tuple[int, int]:
        """`run` bursts of one segment from its burst `phase`; `step` > 0: the closed form may be used.
        Returns (first data on the bus, end of the last data). The hottest code of a DRAM run: locals
        and inlined helpers on purpose."""
        sets = self._sets
        row_set, row = self.row_sets[segment % sets], segment // sets
        ways = self._ways
        way = phase % ways
        if row_set.row != row:
            self._open(row_set, row, way, now)
            self.stats.row_misses += 1
        t = self.t
        groups = row_set.groups
        first = self.last_col + (t.ccd_l if groups[way] == self.last_col_group else t.ccd_s)
        if first < now:
            first = now
        latency = t.cwl if is_write else t.cl
        if first < self.bus_free - latency:  # its data must not start before the bus is free
            first = self.bus_free - latency
        if is_write:
            if first < self.last_read_col + t.rtw:
                first = self.last_read_col + t.rtw
            closed_form = step
        else:
            closed_form = step and first >= self.last_write_end + t.wtr_l
        if closed_form:
            if first >= row_set.ready:  # no row, tWTR or bank-group wait: one arithmetic sequence
                last = first + (run - 1) * step
            elif way == row_set.first_way and row_set.offsets is self._clean_offsets and self._ready_rises:
                # the run that opened the set: visit j waits for ACT j (+ tRCD), and the ACTs are spaced
                # at least `step` apart, so the last first visit is the later of the two lines
                visits = run if run < ways else ways
                opened = row_set.act + t.rcd
                first = first if first > opened else opened
                last = opened + self._clean_offsets[visits - 1]
                if last < first + (visits - 1) * step:
                    last = first + (visits - 1) * step
                last += (run - visits) * step
            else:  # each way's first command waits for its bank
                visits = run if run < ways else ways
                last, visit = first, way
                for j in range(visits):
                    if j:
                        last += step
                    if last < self._way_ready(row_set, visit):
                        last = self._way_ready(row_set, visit)
                    if j == 0:
                        first = last
                    visit = visit + 1 if visit + 1 < ways else 0
                last += (run - visits) * step
            last_group = groups[(phase + run - 1) % ways]
        else:
            first, last, last_group = self._columns(row_set, phase, run, first, is_write, step)
        # after the run's column commands: when its set may precharge (tRTP after the last read, tWR
        # after the last write data), the bus, the turnaround state
        self.last_col, self.last_col_group = last, last_group
        hold = last + (self._write_hold if is_write else t.rtp)
        if hold > row_set.pre_allowed:
            row_set.pre_allowed = hold
        if self.closed_page:
            self._precharge(row_set, row_set.pre_allowed)
        data_end = last + latency + t.burst
        self.bus_free = data_end
        if is_write:
            self.last_write_end, self.last_write_group = data_end, last_group
        else:
            self.last_read_col = last
        return first + latency, data_end

    def _columns(self, row_set: RowSet, phase: int, run: int, first: int, is_write: bool,
                 step: int) -> tuple[int, int, int]:
        """Column commands one by one: each way's readiness, tWTR per bank group and every group's
        last command; with `step` > 0 only up to each way's first command, the rest at `step`.
        Returns the first and the last command and the last one's bank group."""
        t = self.t
        groups, group_col = row_set.groups, self.group_col
        ways = len(groups)
        col, group = self.last_col, self.last_col_group
        write_end = NEVER if is_write else self.last_write_end
        way = phase % ways
        explicit = min(run, ways) if step else run
        for j in range(explicit):
            way_group = groups[way]
            col = first if j == 0 else col + (t.ccd_l if way_group == group else t.ccd_s)
            ready = self._way_ready(row_set, way)
            if col < ready:
                col = ready
            if col < group_col[way_group] + t.ccd_l:
                col = group_col[way_group] + t.ccd_l
            if col < write_end + (t.wtr_l if way_group == self.last_write_group else t.wtr_s):
                col = write_end + (t.wtr_l if way_group == self.last_write_group else t.wtr_s)
            if j == 0:
                first = col
            group_col[way_group] = col
            group = way_group
            way = way + 1 if way + 1 < ways else 0
        if run > explicit:
            col += (run - explicit) * step
            group = groups[(phase + run - 1) % ways]
        return first, col, group

    # ------------------------------------------------------------------ rows and activates

    def _open(self, row_set: RowSet, row: int, first_way: int, now: int) -> None:
        """Open `row` in every bank of the row set: precharge what it holds (and refresh its banks when
        a per-bank refresh fell due), then activate the banks in the order the run visits them, from
        `first_way`. Runs on up to half of the transfers: the precharge and the per-bank refresh inline."""
        t = self.t
        act_ready = row_set.act_ready
        open_sets = self.open_sets
        window = now // t.refi * t.refi if self.per_bank_refresh else 0
        refresh = window > row_set.refresh_seen
        if row_set.row >= 0:  # a refresh precharges as soon as allowed, a miss when requested
            closed = row_set.pre_allowed
            if closed < now and not refresh:
                closed = now
            closed += t.rp
            if closed > act_ready:
                act_ready = closed
            open_sets -= 1
            if not open_sets:
                self.closed_since = closed
        if refresh:  # the set's banks refresh while idle, from at most one period before it fell due
            row_set.refresh_seen = window
            act_ready = (window - t.refi if window - t.refi > act_ready else act_ready) + t.rfcpb
        row_set.act_ready = act_ready
        act = row_set.act + t.rc
        if act < now:
            act = now
        if act < act_ready:
            act = act_ready
        groups = row_set.groups
        clean = self._clean_ok and act >= self._last_act + t.faw  # the earlier ACTs hold none of these back
        if not clean and self._shifts_clean and self._clean_base is not None:
            # the last four ACTs are one clean opening's (four ways, four bank groups): this opening is
            # the same pattern, started tRRD after the last of them and tFAW after the first
            gap = t.rrd_l if groups[first_way] == self.last_act_group else t.rrd_s
            if act < self._last_act + gap:
                act = self._last_act + gap
            if act < self._clean_base + t.faw:
                act = self._clean_base + t.faw
            clean = True
        if clean:
            offsets = self._clean_offsets
            if self._ring_from_clean:  # the four latest ACTs are this opening's: the ring is written lazily
                self._clean_base = act
            else:
                latest = [act + offset for offset in offsets]
                self._acts = (self._acts + latest)[-4:]
            self._last_act = act + self._clean_span
            self.last_act_group = groups[first_way - 1]  # the way before the first: visited last
            row_set.ready = act + self._clean_ready
            row_set.pre_allowed = act + self._clean_pre
        else:
            act, offsets = self._activate_one_by_one(groups, first_way, act, self._act_ring())
            self._last_act = act + offsets[-1]
            row_set.ready = act + offsets[-1] + t.rcd
            row_set.pre_allowed = act + offsets[-1] + t.ras
        if not open_sets and act > self.closed_since:
            self.stats.precharged_ps += act - self.closed_since
        self.open_sets = open_sets + 1
        row_set.row, row_set.act, row_set.first_way, row_set.offsets = row, act, first_way, offsets

    def _act_ring(self) -> list[int]:
        """The last four ACTs, oldest first (written out now if the last opening left them implicit)."""
        if self._clean_base is not None:
            self._acts = [self._clean_base + offset for offset in self._clean_offsets[-4:]]
            self._clean_base = None
        return self._acts

    def _activate_one_by_one(self, groups: tuple[int, ...], first_way: int, act: int,
                             acts: list[int]) -> tuple[int, tuple[int, ...]]:
        """ACTs of a set when earlier ACTs still bind: each tRRD_S/L after the previous one and tFAW
        after the fourth before (`acts`: the last four ACTs, oldest first, updated in place).
        Returns the first ACT and the offsets from it."""
        t = self.t
        ways, last_group = len(groups), self.last_act_group
        first = act
        offsets = []
        way = first_way
        for k in range(ways):
            group = groups[way]
            if k:
                act = acts[-1]
            if act < acts[-1] + (t.rrd_l if group == last_group else t.rrd_s):
                act = acts[-1] + (t.rrd_l if group == last_group else t.rrd_s)
            if act < acts[0] + t.faw:
                act = acts[0] + t.faw
            if k == 0:
                first = act
            del acts[0]
            acts.append(act)
            offsets.append(act - first)
            last_group = group
            way = way + 1 if way + 1 < ways else 0
        self.last_act_group = last_group
        spaced = tuple(offsets)
        return first, self._clean_offsets if spaced == self._clean_offsets else spaced  # same: closed form applies

    def _way_ready(self, row_set: RowSet, way: int) -> int:
        """When `way` of the open row set can take its first column command (its ACT + tRCD)."""
        return row_set.act + row_set.offsets[(way - row_set.first_way) % self._ways] + self.t.rcd

    def _precharge(self, row_set: RowSet, when: int) -> None:
        row_set.row = -1
        if when + self.t.rp > row_set.act_ready:
            row_set.act_ready = when + self.t.rp
        self.open_sets -= 1
        if not self.open_sets:
            self.closed_since = when + self.t.rp

    # ------------------------------------------------------------------ refresh

    def _all_bank_refresh(self, now: int) -> None:
        """Once per tREFI: precharge all, then the channel is blocked for tRFC. A refresh due while data
        streams waits for the bus (JEDEC allows postponing), so a busy channel pays it in full; one that
        fell due while the channel was idle cost the traffic nothing and is not replayed."""
        t = self.t
        current = now if now > self.bus_free else self.bus_free
        due = current // t.refi * t.refi
        self.next_refresh = due + t.refi
        start = max(due, self.bus_free)
        if not self.open_sets and start > self.closed_since:
            self.stats.precharged_ps += start - self.closed_since
        if self.open_sets:  # every open set precharges once it may
            for row_set in self.row_sets:
                if row_set.row >= 0:
                    row_set.row = -1
                    if row_set.pre_allowed > start:
                        start = row_set.pre_allowed
            start += t.rp
            self.open_sets = 0
        blocked_until = start + t.rfc
        self.closed_since = blocked_until
        for row_set in self.row_sets:
            if row_set.act_ready < blocked_until:
                row_set.act_ready = blocked_until
        if blocked_until > self.bus_free:
            self.bus_free = blocked_until
        self.stats.refresh_stalls += 1

    # ------------------------------------------------------------------ state queries

    def finish(self, end_ps: int) -> None:
        """Close the books at the end of the run: time since all banks closed is precharge standby."""
        if not self.open_sets and end_ps > self.closed_since:
            self.stats.precharged_ps += end_ps - self.closed_since
            self.closed_since = end_ps

    def is_row_hit(self, first_burst: int) -> bool:
        segment = first_burst // self.geo.segment_bursts
        return self.row_sets[segment % self.geo.sets].row == segment // self.geo.sets

    @property
    def miss_lead_ps(self) -> int:
        """How long before its data a row miss must be started (precharge, activate, CAS)."""
        return self.t.rp + self.t.rcd + self.t.cl
