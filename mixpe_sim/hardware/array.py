"""The PE array (with its dequant unit) and the vector unit as SimPy processes.

Each walks its steps in program order: wait for the operand tiles (attributing the wait to its
cause), reserve output-buffer space, stay busy for the closed-form tile time, release inputs after
their last use and hand finished output tiles to the store DMA. One timeout per tile, never per
cycle. A run's tiles (one GEMM instance, docs/performance.md) are looked up once, per distinct tile
cost, and counted before they run (every step runs once); the counts are folded into the op counters
after the run, so a tile costs the array two list reads besides its timing.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass

import simpy

from mixpe_sim.arch.pe import ArraySpec, GemmPrecision, TileCost, parallelism, tile_cost
from mixpe_sim.config.models import HardwareConfig
from mixpe_sim.hardware.buffers import Buffer
from mixpe_sim.hardware.clock import Clock
from mixpe_sim.hardware.counters import OpCounters
from mixpe_sim.hardware.dma import OpCompletion, StoreDMA, StoreRequest
from mixpe_sim.hardware.primitives import NOT_YET, Arrivals
from mixpe_sim.trace.sink import TraceSink
from mixpe_sim.units import BITS_PER_BYTE, ceil_div, cycles_to_ps
from mixpe_sim.workload.program import NO_OP, NO_TOKEN, OpInfo, RelativeTileStep, TileRun, TokenTable, VectorStep


@dataclass(frozen=True, slots=True)
class Operands:
    """What the compute units share: tiles, their arrival times, op completion, the buffers."""

    tokens: TokenTable
    remaining_uses: list[int]  # per token, decremented on each use; freed at zero
    arrivals: Arrivals
    completion: OpCompletion
    ops: Sequence[OpInfo]
    buffers: dict[str, Buffer]  # "weight", "activation", "output", "scale" (may alias "weight")


@dataclass(slots=True)
class _TileEntry:
    """Time on the array and actions of one tile, cached per precision, tile shape, last K tile or not
    and operand bytes (the only inputs of tile_cost)."""

    busy_ps: int
    compute_ps: int
    overlap_stall_cause: str  # "dequant", "buffer_port" or "k_split_reduce" when slower than the MACs
    psum_bytes: int
    cost: TileCost
    active_pe_cycles: float
    traced_active_pes: float  # active PEs per compute cycle, as the trace shows it
    dequant_ps: int
    weight_read_bytes: int
    scale_read_bytes: int
    activation_read_bytes: int


# A tile kind: Mt, Nt, Kt, first K tile, last K tile, then its operands' bytes (weight payload and
# scales, activation payload and scales); a tally key is the op followed by a tile kind (sorted, so
# the float sums of the fold run in one fixed order)
_TileKind = tuple[int, int, int, bool, bool, int, int, int, int]
_TallyKey = tuple[int, int, int, int, bool, bool, int, int, int, int]


@dataclass(slots=True)
class _RunPlan:
    """What the array needs to walk one run's steps: each step's entry and, per tally key of the op's
    tiles, how many of the run's steps have it (every step runs once, so the counts are known before)."""

    entries: list[_TileEntry]
    counts: list[tuple[_TileKind, _TileEntry, int]]


class _ComputeUnit:
    """Waiting, stall attribution and releasing shared by the array and the vector unit."""

    name = "compute"

    def __init__(self, env: Clock, operands: Operands, counters: list[OpCounters],
                 store: StoreDMA, trace: TraceSink, run_ahead: bool) -> None:
        self.env, self.operands, self.counters = env, operands, counters
        self.store, self._trace = store, trace
        self._stall_lane = trace.lane(self.name, "stall")
        self._run_ahead = run_ahead
        self._scale_buffer = operands.buffers["scale"]
        tokens = operands.tokens  # its columns, read per tile
        self._token_buffer, self._token_after_op = tokens.buffer, tokens.after_op
        self._token_payload, self._token_scales = tokens.payload_bytes, tokens.scale_bytes

    def _hold(self, delay_ps: int) -> Generator[simpy.Event, None, None]:
        """Stay busy for `delay_ps`. When no event is due before the end (nothing else can act in the
        meantime), the clock is moved on directly: the same outcome as a timeout, without the event."""
        env = self.env
        if self._run_ahead and (not env._queue or env._queue[0][0] > env._now + delay_ps):
            env._now += delay_ps  # SimPy has no public way to advance the clock without an event
            return
        yield env.timeout(delay_ps)

    def _wait_token(self, token_id: int, op: int, load_cause: str) -> Generator[simpy.Event, None, None]:
        """Wait until the token is in its buffer, attributing the wait to what holds it back."""
        cause = self._wait_cause(token_id, load_cause)
        start = self.env.now
        ready = self.operands.arrivals.ready_ps[token_id]
        if ready == NOT_YET:
            yield self.operands.arrivals.wait(token_id)
        else:
            yield from self._hold(ready - start)
        self._stall(op, cause, start)

    def _skip_to_arrival(self, token_id: int, op: int, load_cause: str, ready_ps: int) -> None:
        """`_wait_token` when the arrival time is known and no other event is due before it (run ahead):
        the clock moves to the arrival at once, the wait is attributed as there; no generator."""
        cause = self._wait_cause(token_id, load_cause)
        start = self.env._now
        self.env._now = ready_ps
        self._stall(op, cause, start)

    def _wait_cause(self, token_id: int, load_cause: str) -> str:
        """What a wait for the token is attributed to: its load, or the op that has yet to produce it."""
        producer = self._token_after_op[token_id]
        if producer != NO_OP and not self.operands.completion.done[producer]:
            return "vector" if self.operands.ops[producer].kind == "vector" else "dependency"
        return load_cause

    def _stall(self, op: int, cause: str, start_ps: int) -> None:
        waited = self.env.now - start_ps
        if waited:
            self.counters[op].stall_ps[cause] += waited
            if self._trace.enabled:  # the op is the one of the next tile slice on the "tiles" lane
                self._trace.slice(self._stall_lane, cause, start_ps, self.env.now)

    def _reserve_output(self, op: int, nbytes: int) -> Generator[simpy.Event, None, None]:
        start = self.env.now
        yield from self.operands.buffers["output"].reserve(nbytes)
        self._stall(op, "output_writeback", start)

    def _used(self, token_id: int) -> None:
        remaining = self.operands.remaining_uses
        remaining[token_id] -= 1
        if not remaining[token_id]:
            self._free(token_id)

    def _free(self, token_id: int) -> None:
        """The token's last use is over: its buffer space goes back (and may let the DMA load more)."""
        payload, scales = self._token_payload[token_id], self._token_scales[token_id]
        buffer = self.operands.buffers[self._token_buffer[token_id]]
        if not scales or buffer is self._scale_buffer:
            buffer.release(payload + scales)
            return
        buffer.release(payload)
        self._scale_buffer.release(scales)


class PEArray(_ComputeUnit):
    name = "pe_array"

    def __init__(self, env: Clock, hw: HardwareConfig, runs: Sequence[TileRun],
                 operands: Operands, counters: list[OpCounters], store: StoreDMA, trace: TraceSink,
                 run_ahead: bool = True) -> None:
        super().__init__(env, operands, counters, store, trace, run_ahead)
        self._tile_lane = trace.lane(self.name, "tiles", ("op", "m", "n", "k", "active_pes"))
        self._dequant_lane = trace.lane("dequant", "dequant", ("op", "ops"))
        # read per traced tile (untraced runs never make them)
        self._op_names = [info.name for info in operands.ops] if trace.enabled else []
        self._dequant_names = [f"{info.dequant} dequant" for info in operands.ops] if trace.enabled else []
        self._array = ArraySpec.from_hw(hw)
        self._freq_hz = hw.core_freq_hz
        self._psum_bits = hw.array.psum_bits
        # per op, the index of its precision among the distinct ones (small ints hash fast)
        self._precisions: list[GemmPrecision] = []
        index_of: dict[GemmPrecision, int] = {}
        self._precision_of_op: list[int] = []
        for info in operands.ops:
            precision = GemmPrecision(info.weight_bits, info.activation_bits, info.dequant, info.group_size)
            if precision not in index_of:
                index_of[precision] = len(self._precisions)
                self._precisions.append(precision)
            self._precision_of_op.append(index_of[precision])
        self._entries: dict[tuple[int, int, int, int, bool, int, int, int, int], _TileEntry] = {}
        # keyed by the precision and the identity of the run's steps: a GEMM template's steps are one
        # shared tuple for every instance and block of its shape (alive as long as the program)
        self._plan_index: dict[tuple[int, int], int] = {}
        self._plans: list[_RunPlan] = []
        self._runs_per_plan: dict[tuple[int, int], int] = {}  # (op, plan index) -> runs
        self.process = env.process(self._run(runs))

    def _plan(self, op: int, steps: tuple[RelativeTileStep, ...], t0: int) -> _RunPlan:
        """The run's plan (made once per precision and template); the run is counted for the fold."""
        key = (self._precision_of_op[op], id(steps))
        index = self._plan_index.get(key)
        if index is None:
            index = self._plan_index[key] = len(self._plans)
            self._plans.append(self._make_plan(key[0], steps, t0))
        runs = self._runs_per_plan
        run_key = (op, index)
        runs[run_key] = runs.get(run_key, 0) + 1
        return self._plans[index]

    def _make_plan(self, precision: int, steps: tuple[RelativeTileStep, ...], t0: int) -> _RunPlan:
        payload, scales, entries = self._token_payload, self._token_scales, self._entries
        plan_entries: list[_TileEntry] = []
        counts: dict[_TileKind, tuple[_TileEntry, int]] = {}
        for mt, nt, kt, w_rel, a_rel, _, first_k, last_k, _, _, _ in steps:
            w_token, a_token = t0 + w_rel, t0 + a_rel
            operand_bytes = (payload[w_token], scales[w_token], payload[a_token], scales[a_token])
            key = (precision, mt, nt, kt, last_k, *operand_bytes)
            entry = entries.get(key)
            if entry is None:
                entry = entries[key] = self._entry(self._precisions[precision], mt, nt, kt, last_k,
                                                   *operand_bytes)
            plan_entries.append(entry)
            kind = (mt, nt, kt, first_k, last_k, *operand_bytes)
            known = counts.get(kind)
            counts[kind] = (entry, 1 if known is None else known[1] + 1)
        return _RunPlan(plan_entries, [(key, entry, count) for key, (entry, count) in counts.items()])

    def _tally(self) -> dict[_TallyKey, tuple[_TileEntry, int]]:
        """Per op and tile kind: its entry and how many such tiles ran (each run's plan counts)."""
        tally: dict[_TallyKey, tuple[_TileEntry, int]] = {}
        for (op, index), runs in self._runs_per_plan.items():
            for key, entry, count in self._plans[index].counts:
                op_key = (op, *key)
                known = tally.get(op_key)
                tally[op_key] = (entry, count * runs if known is None else known[1] + count * runs)
        return tally

    def _entry(self, precision: GemmPrecision, mt: int, nt: int, kt: int, last_k: bool, w_payload: int,
               w_scales: int, a_payload: int, a_scales: int) -> _TileEntry:
        cost = tile_cost(self._array, precision, mt, nt, kt, w_payload + w_scales, a_payload + a_scales, last_k)
        par = parallelism(self._array.kind, precision.weight_bits, precision.activation_bits)
        return _TileEntry(
            busy_ps=cycles_to_ps(cost.busy_cycles, self._freq_hz),
            compute_ps=cycles_to_ps(cost.compute_cycles, self._freq_hz),
            overlap_stall_cause=cost.overlap_stall_cause,
            psum_bytes=ceil_div(mt * nt * self._psum_bits, BITS_PER_BYTE),
            cost=cost,
            active_pe_cycles=cost.macs / par.macs_per_pe_cycle,
            traced_active_pes=round(cost.macs / par.macs_per_pe_cycle / max(1, cost.compute_cycles), 3),
            dequant_ps=cycles_to_ps(cost.dequant_cycles, self._freq_hz),
            weight_read_bytes=w_payload * cost.weight_passes,
            scale_read_bytes=w_scales * cost.weight_passes,
            activation_read_bytes=a_payload * cost.activation_passes,
        )

    def _run(self, runs: Sequence[TileRun]) -> Generator[simpy.Event, None, None]:
        """The engine's hottest loop (one iteration per tile): typed locals and tuple unpacking on purpose."""
        env, trace, run_ahead = self.env, self._trace, self._run_ahead
        ready_ps = self.operands.arrivals.ready_ps
        # components as typed locals, their methods called on them: compiled, these are native calls
        # (a method bound to a local would be a generic Python call)
        arrivals, remaining, store = self.operands.arrivals, self.operands.remaining_uses, self.store
        counters, queue, output = self.counters, env._queue, self.operands.buffers["output"]
        for steps, op, t0, _, o_base in runs:
            c = counters[op]
            entries = self._plan(op, steps, t0).entries
            for index in range(len(steps)):
                mt, nt, kt, w_rel, a_rel, _, first_k, last_k, out_addr, out_bytes, out_token = steps[index]
                entry = entries[index]
                w_token, a_token = t0 + w_rel, t0 + a_rel
                ready = ready_ps[w_token]
                if ready > env._now:  # on its way (NOT_YET is below any time): run ahead to it if nothing is due
                    if run_ahead and (not queue or queue[0][0] > ready):
                        self._skip_to_arrival(w_token, op, "weight_load", ready)
                    else:
                        yield from self._wait_token(w_token, op, "weight_load")
                elif ready == NOT_YET:
                    yield from self._wait_token(w_token, op, "weight_load")
                ready = ready_ps[a_token]
                if ready > env._now:
                    if run_ahead and (not queue or queue[0][0] > ready):
                        self._skip_to_arrival(a_token, op, "activation_load", ready)
                    else:
                        yield from self._wait_token(a_token, op, "activation_load")
                elif ready == NOT_YET:
                    yield from self._wait_token(a_token, op, "activation_load")
                if first_k and not output.try_reserve(entry.psum_bytes):  # no wait (the common case): no generator
                    yield from self._reserve_output(op, entry.psum_bytes)
                start = env._now
                end = start + entry.busy_ps
                if run_ahead and (not queue or queue[0][0] > end):  # _hold, inlined
                    env._now = end
                else:
                    yield env.timeout(entry.busy_ps)
                if c.start_ps < 0:
                    c.start_ps = start
                c.end_ps = end
                if trace.enabled:
                    self._trace_tile(op, mt, nt, kt, entry, start)
                # the result is booked on the memory before the freed input space lets the DMA load more
                if last_k:
                    if out_token != NO_TOKEN:
                        arrivals.deliver(out_token, end)
                    store.submit(StoreRequest(op, o_base + out_addr, out_bytes, entry.psum_bytes, end))
                remaining[w_token] -= 1
                if not remaining[w_token]:
                    self._free(w_token)
                remaining[a_token] -= 1
                if not remaining[a_token]:
                    self._free(a_token)
        self._fold_tally()

    def _trace_tile(self, op: int, mt: int, nt: int, kt: int, entry: _TileEntry, start: int) -> None:
        trace = self._trace
        # the MAC part and the tail where a slower overlapped resource held the MACs back, as counted
        compute_end = start + entry.compute_ps
        trace.slice(self._tile_lane, self._op_names[op], start, compute_end, op, mt, nt, kt,
                    entry.traced_active_pes)
        if self.env._now > compute_end:
            trace.slice(self._stall_lane, entry.overlap_stall_cause, compute_end, self.env._now)
        dequant_ops = entry.cost.dequant_ops
        if dequant_ops:
            trace.slice(self._dequant_lane, self._dequant_names[op], start, start + entry.dequant_ps, op,
                        dequant_ops)

    def _fold_tally(self) -> None:
        """Turn (tile kind -> count) into op counters and buffer traffic."""
        buffers = self.operands.buffers
        for key, (entry, count) in sorted(self._tally().items()):
            op, first_k = key[0], key[4]
            c = self.counters[op]
            cost = entry.cost
            c.tiles += count
            c.macs += cost.macs * count
            c.compute_cycles += cost.compute_cycles * count
            c.busy_ps += entry.compute_ps * count
            c.active_pe_cycles += entry.active_pe_cycles * count
            c.dequant_ops += cost.dequant_ops * count
            c.reduce_ops += cost.reduce_ops * count
            if entry.busy_ps > entry.compute_ps:  # the slower overlapped resource holds the MACs back
                c.stall_ps[entry.overlap_stall_cause] += (entry.busy_ps - entry.compute_ps) * count
            buffers["weight"].counters.bytes_read += entry.weight_read_bytes * count
            buffers["scale"].counters.bytes_read += entry.scale_read_bytes * count
            buffers["activation"].counters.bytes_read += entry.activation_read_bytes * count
            buffers["output"].counters.bytes_written += entry.psum_bytes * count
            if not first_k:  # accumulate onto the stored partial sums
                buffers["output"].counters.bytes_read += entry.psum_bytes * count


class VectorUnit(_ComputeUnit):
    name = "vector_unit"

    def _stall(self, op: int, cause: str, start_ps: int) -> None:
        """The vector unit idling for its input is traced but not counted: the PE array's wait
        for vector results is already attributed (cause "vector"), counting both would double it."""
        if self._trace.enabled and self.env.now > start_ps:
            self._trace.slice(self._op_stall_lane, cause, start_ps, self.env.now, op)

    def __init__(self, env: Clock, hw: HardwareConfig, steps: Sequence[VectorStep],
                 operands: Operands, counters: list[OpCounters], store: StoreDMA, trace: TraceSink,
                 run_ahead: bool = True) -> None:
        super().__init__(env, operands, counters, store, trace, run_ahead)
        self._op_stall_lane = trace.lane(self.name, "stall", ("op",))
        self._lanes = hw.vector.lanes
        self._freq_hz = hw.core_freq_hz
        self.process = env.process(self._run(steps))

    def _run(self, steps: Sequence[VectorStep]) -> Generator[simpy.Event, None, None]:
        env, trace = self.env, self._trace
        buffers = self.operands.buffers
        ready_ps = self.operands.arrivals.ready_ps
        for step in steps:
            op = step.op
            ready = ready_ps[step.in_token]
            if ready == NOT_YET or ready > env.now:
                yield from self._wait_token(step.in_token, op, "activation_load")
            yield from self._reserve_output(op, step.out_bytes)
            cycles = ceil_div(step.elements * step.ops_per_element, self._lanes)
            busy_ps = cycles_to_ps(cycles, self._freq_hz)
            start = env.now
            yield from self._hold(busy_ps)
            c = self.counters[op]
            c.tiles += 1
            c.compute_cycles += cycles
            c.busy_ps += busy_ps
            c.vector_elements += step.elements * step.ops_per_element
            c.touch(start, env.now)
            buffers["activation"].counters.bytes_read += self._token_payload[step.in_token]
            buffers["output"].counters.bytes_written += step.out_bytes
            if trace.enabled:
                trace.span(self.name, "ops", self.operands.ops[op].name, start, env.now,
                           {"op": op, "elements": step.elements})
            if step.out_token != NO_TOKEN:
                self.operands.arrivals.deliver(step.out_token, env.now)
            self.store.submit(StoreRequest(op, step.out_addr, step.out_bytes, step.out_bytes, env.now))
            self._used(step.in_token)
