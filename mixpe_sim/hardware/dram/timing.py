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

from mixpe_sim.config.models import DramMemoryConfig
from mixpe_sim.units import ns_to_ps

NEVER = -(10**18)  # "long ago": a constraint that no longer binds


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

    acts: int = 0
    row_misses: int = 0  # bursts that had to open their row (the first burst of each row-set opening)
    bursts: int = 0
    busy_ps: int = 0  # data bus carrying data
    precharged_ps: int = 0  # all banks closed (precharge standby)
    refresh_stalls: int = 0  # all-bank refreshes the traffic had to wait for

    @property
    def row_hits(self) -> int:
        return self.bursts - self.row_misses


class ChannelTiming:
    """Timing state of one channel: row sets, activate window, bus, turnaround, refresh."""

    def __init__(self, cfg: DramMemoryConfig) -> None:
        self.geo = geo = ChannelGeometry.of(cfg)
        self.t = t = TimingPs.of(cfg)
        # read on every transfer: plain attributes, not the geometry's properties
        self._segment_bursts, self._sets, self._set_groups = geo.segment_bursts, geo.sets, geo.set_groups
        sets, ways = geo.sets, geo.ways
        self.closed_page = cfg.page_policy == "closed"
        self.per_bank_refresh = cfg.refresh == "per_bank"
        self.set_row = [-1] * sets  # the open row of each row set (-1: closed)
        self.set_act = [NEVER] * sets  # first ACT of its last opening (tRC: every bank in the same order)
        # a set's ACTs: the first at set_act, way (set_first_way + k) % ways at set_act + offsets[k]
        self.set_first_way = [0] * sets
        self.set_offsets: list[tuple[int, ...]] = [(0,) * ways] * sets
        self.set_ready = [0] * sets  # every way of the set ready (its last ACT + tRCD)
        self.set_pre_allowed = [0] * sets  # earliest PRE: tRAS after its ACTs, tRTP/tWR after its columns
        self.set_act_ready = [0] * sets  # earliest ACT while closed: PRE + tRP, refresh end
        self.set_refresh_seen = [0] * sets  # per-bank refresh: the last due time accounted for
        self.bus_free = 0
        self.last_col = NEVER  # last column command
        self.last_col_group = -1
        self.group_col = [NEVER] * cfg.bank_groups  # per bank group: last column (slow path only)
        self.last_was_write = False
        self.last_write_end = NEVER  # end of the last write data (tWTR)
        self.last_write_group = -1
        self.last_read_col = NEVER  # last READ (tRTW)
        self._acts = [NEVER] * 4  # ring of the last four ACTs (tFAW); _acts[_act_slot] is the oldest
        self._act_slot = 0
        self.last_act_group = -1
        self.next_refresh = t.refi
        self.open_sets = 0
        self.closed_since = 0  # all banks closed since (while open_sets == 0)
        self.stats = ChannelStats()
        # ACT offsets of an opening the previous ACTs do not hold back: tRRD_S apart (consecutive ways are
        # in different bank groups), every fifth at least tFAW after the first of its window
        offsets = [0]
        for k in range(1, ways):
            offsets.append(max(offsets[-1] + t.rrd_s, offsets[k - 4] + t.faw if k >= 4 else 0))
        self._clean_offsets = tuple(offsets)
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
        seg_bursts, sets = self._segment_bursts, self._sets
        segment, phase = divmod(first_burst, seg_bursts)
        t = self.t
        row_set = segment % sets
        if phase + bursts <= seg_bursts and self.set_row[row_set] == segment // sets and self._step and \
                (self.per_bank_refresh or (now if now > self.bus_free else self.bus_free) < self.next_refresh):
            # the common case of `_segment`, inlined: the whole run in one open row set
            latency = t.cwl if is_write else t.cl
            groups = self._set_groups[row_set]
            ways = len(groups)
            first = self.last_col + (t.ccd_l if groups[phase % ways] == self.last_col_group else t.ccd_s)
            if first < now:
                first = now
            if first < self.bus_free - latency:
                first = self.bus_free - latency
            if is_write and first < self.last_read_col + t.rtw:
                first = self.last_read_col + t.rtw
            if first >= self.set_ready[row_set] and (is_write or first >= self.last_write_end + t.wtr_l):
                self.stats.bursts += bursts
                self.stats.busy_ps += bursts * t.burst
                return self._finish_run(row_set, first, first + (bursts - 1) * self._step,
                                        groups[(phase + bursts - 1) % ways], is_write, latency)
        pos, end = first_burst, first_burst + bursts
        first_data = -1
        data_end = now
        while pos < end:
            segment, phase = divmod(pos, seg_bursts)
            run = end - pos if end - pos < seg_bursts - phase else seg_bursts - phase
            if not self.per_bank_refresh and (now if now > self.bus_free else self.bus_free) >= self.next_refresh:
                self._all_bank_refresh(now)
            start, data_end = self._segment(segment, phase, run, now, is_write, self._step)
            if first_data < 0:
                first_data = start
            pos += run
        self.stats.bursts += bursts
        self.stats.busy_ps += bursts * self.t.burst
        return first_data, data_end

    def _finish_run(self, row_set: int, first: int, last: int, last_group: int, is_write: bool,
                    latency: int) -> tuple[int, int]:
        """After a run's column commands: when its set may precharge (tRTP after the last read, tWR after
        the last write data), the bus, the turnaround state. Returns (first data, end of data)."""
        t = self.t
        self.last_col, self.last_col_group = last, last_group
        hold = last + (t.cwl + t.burst + t.wr if is_write else t.rtp)
        if hold > self.set_pre_allowed[row_set]:
            self.set_pre_allowed[row_set] = hold
        if self.closed_page:
            self._precharge(row_set, self.set_pre_allowed[row_set])
        data_end = last + latency + t.burst
        self.bus_free = data_end
        self.last_was_write = is_write
        if is_write:
            self.last_write_end, self.last_write_group = data_end, last_group
        else:
            self.last_read_col = last
        return first + latency, data_end

    def serve_by_burst(self, first_burst: int, bursts: int, now: int, is_write: bool) -> tuple[int, int]:
        """Reference for `serve`: every burst timed on its own, each bank group's last command
        honoured explicitly. Refresh is looked at when a segment starts, as in `serve`. Tests only."""
        seg_bursts = self._segment_bursts
        first_data, data_end = -1, now
        for pos in range(first_burst, first_burst + bursts):
            segment, phase = divmod(pos, seg_bursts)
            if (phase == 0 or pos == first_burst) and not self.per_bank_refresh and \
                    (now if now > self.bus_free else self.bus_free) >= self.next_refresh:
                self._all_bank_refresh(now)
            start, data_end = self._segment(segment, phase, 1, now, is_write, 0)
            if first_data < 0:
                first_data = start
        self.stats.bursts += bursts
        self.stats.busy_ps += bursts * self.t.burst
        return first_data, data_end

    def _segment(self, segment: int, phase: int, run: int, now: int, is_write: bool,
                 step: int) -> tuple[int, int]:
        """`run` bursts of one segment from its burst `phase`; `step` > 0: the closed form may be used."""
        t, geo = self.t, self.geo
        row_set, row = segment % geo.sets, segment // geo.sets
        if self.set_row[row_set] != row:
            self._open(row_set, row, phase % geo.ways, now)
            self.stats.row_misses += 1
        latency = t.cwl if is_write else t.cl
        earliest = self.bus_free - latency  # its data must not start before the bus is free
        if earliest < now:
            earliest = now
        if is_write and earliest < self.last_read_col + t.rtw:
            earliest = self.last_read_col + t.rtw
        groups = geo.set_groups[row_set]
        ways = len(groups)
        first_group = groups[phase % ways]
        first = self.last_col + (t.ccd_l if first_group == self.last_col_group else t.ccd_s)
        if first < earliest:
            first = earliest
        if step and (is_write or first >= self.last_write_end + t.wtr_l):
            visits = run if run < ways else ways
            if first >= self.set_ready[row_set]:  # no row, tWTR or bank-group wait: one arithmetic sequence
                last = first + (run - 1) * step
            elif phase % ways == self.set_first_way[row_set] and self.set_offsets[row_set] is self._clean_offsets \
                    and self._ready_rises:
                # the run that opened the set: visit j waits for ACT j (+ tRCD), and the ACTs are spaced
                # at least `step` apart, so the last first visit is the later of the two lines
                opened = self.set_act[row_set] + t.rcd
                first = first if first > opened else opened
                last = opened + self._clean_offsets[visits - 1]
                if last < first + (visits - 1) * step:
                    last = first + (visits - 1) * step
                last += (run - visits) * step
            else:  # each way's first command waits for its bank
                last, way = first, phase % ways
                for j in range(visits):
                    if j:
                        last += step
                    if last < self._way_ready(row_set, way):
                        last = self._way_ready(row_set, way)
                    if j == 0:
                        first = last
                    way = way + 1 if way + 1 < ways else 0
                last += (run - visits) * step
            last_group = groups[(phase + run - 1) % ways]
        else:
            first, last, last_group = self._columns(row_set, phase, run, first, is_write, step)
        return self._finish_run(row_set, first, last, last_group, is_write, latency)

    def _columns(self, row_set: int, phase: int, run: int, first: int, is_write: bool,
                 step: int) -> tuple[int, int, int]:
        """Column commands one by one: each way's readiness, tWTR per bank group and every group's
        last command; with `step` > 0 only up to each way's first command, the rest at `step`.
        Returns the first and the last command and the last one's bank group."""
        t = self.t
        groups, group_col = self.geo.set_groups[row_set], self.group_col
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

    def _open(self, row_set: int, row: int, first_way: int, now: int) -> None:
        """Open `row` in every bank of the row set: precharge what it holds, then activate the banks
        in the order the run visits them, from `first_way`."""
        t = self.t
        if self.per_bank_refresh and now // t.refi * t.refi > self.set_refresh_seen[row_set]:
            self._bank_refresh(row_set, now)
        if self.set_row[row_set] >= 0:
            pre = self.set_pre_allowed[row_set]
            self._precharge(row_set, now if now > pre else pre)
        groups = self.geo.set_groups[row_set]
        ways = len(groups)
        act = self.set_act[row_set] + t.rc
        if act < now:
            act = now
        if act < self.set_act_ready[row_set]:
            act = self.set_act_ready[row_set]
        acts, slot = self._acts, self._act_slot
        if self._clean_ok and act >= acts[slot - 1] + t.faw:  # the earlier ACTs hold none of these back
            offsets = self._clean_offsets
            for k in range(ways - 4 if ways > 4 else 0, ways):
                acts[slot] = act + offsets[k]
                slot = slot + 1 if slot < 3 else 0
            self.last_act_group = groups[(first_way + ways - 1) % ways]
        else:
            act, offsets, slot = self._activate_one_by_one(groups, first_way, act, acts, slot)
        self._act_slot = slot
        if not self.open_sets and act > self.closed_since:
            self.stats.precharged_ps += act - self.closed_since
        self.open_sets += 1
        self.set_row[row_set] = row
        self.set_act[row_set], self.set_first_way[row_set], self.set_offsets[row_set] = act, first_way, offsets
        self.set_ready[row_set] = act + offsets[-1] + t.rcd
        self.set_pre_allowed[row_set] = act + offsets[-1] + t.ras
        self.stats.acts += ways

    def _activate_one_by_one(self, groups: tuple[int, ...], first_way: int, act: int, acts: list[int],
                             slot: int) -> tuple[int, tuple[int, ...], int]:
        """ACTs of a set when earlier ACTs still bind: each tRRD_S/L after the previous one and tFAW
        after the fourth before. Returns the first ACT, the offsets from it and the ring's next slot."""
        t = self.t
        ways, last_group = len(groups), self.last_act_group
        first = act
        offsets = []
        way = first_way
        for k in range(ways):
            group = groups[way]
            if k:
                act = acts[slot - 1]
            if act < acts[slot - 1] + (t.rrd_l if group == last_group else t.rrd_s):
                act = acts[slot - 1] + (t.rrd_l if group == last_group else t.rrd_s)
            if act < acts[slot] + t.faw:
                act = acts[slot] + t.faw
            if k == 0:
                first = act
            acts[slot] = act
            slot = slot + 1 if slot < 3 else 0
            offsets.append(act - first)
            last_group = group
            way = way + 1 if way + 1 < ways else 0
        self.last_act_group = last_group
        return first, tuple(offsets), slot

    def _way_ready(self, row_set: int, way: int) -> int:
        """When `way` of the open row set can take its first column command (its ACT + tRCD)."""
        ways = self.geo.ways
        return (self.set_act[row_set] + self.set_offsets[row_set][(way - self.set_first_way[row_set]) % ways]
                + self.t.rcd)

    def _precharge(self, row_set: int, when: int) -> None:
        self.set_row[row_set] = -1
        if when + self.t.rp > self.set_act_ready[row_set]:
            self.set_act_ready[row_set] = when + self.t.rp
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
        if self.open_sets:
            start = max(start, *(p for p, r in zip(self.set_pre_allowed, self.set_row, strict=True) if r >= 0)) + t.rp
            self.set_row = [-1] * len(self.set_row)
            self.open_sets = 0
        blocked_until = start + t.rfc
        self.closed_since = blocked_until
        self.set_act_ready = [ready if ready > blocked_until else blocked_until for ready in self.set_act_ready]
        self.bus_free = max(self.bus_free, blocked_until)
        self.stats.refresh_stalls += 1

    def _bank_refresh(self, row_set: int, now: int) -> None:
        """Per-bank refresh, looked at when a row set is opened. Each bank is due once per tREFI; the
        controller refreshes a set's banks while it is idle (JEDEC lets a per-bank refresh be pulled in
        or postponed), so it costs the traffic time only when the set's idle gap is shorter than tRFCpb."""
        t = self.t
        window = now // t.refi * t.refi  # the latest due time
        self.set_refresh_seen[row_set] = window
        if self.set_row[row_set] >= 0:
            self._precharge(row_set, self.set_pre_allowed[row_set])
        start = max(self.set_act_ready[row_set], window - t.refi)  # idle after its precharge, <= 1 period early
        if start + t.rfcpb > self.set_act_ready[row_set]:
            self.set_act_ready[row_set] = start + t.rfcpb

    # ------------------------------------------------------------------ state queries

    def finish(self, end_ps: int) -> None:
        """Close the books at the end of the run: time since all banks closed is precharge standby."""
        if not self.open_sets and end_ps > self.closed_since:
            self.stats.precharged_ps += end_ps - self.closed_since
            self.closed_since = end_ps

    def is_row_hit(self, first_burst: int) -> bool:
        segment = first_burst // self.geo.segment_bursts
        return self.set_row[segment % self.geo.sets] == segment // self.geo.sets

    @property
    def miss_lead_ps(self) -> int:
        """How long before its data a row miss must be started (precharge, activate, CAS)."""
        return self.t.rp + self.t.rcd + self.t.cl
