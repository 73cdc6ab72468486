"""PE kinds and closed-form per-tile costs.

A PE kind says how many MACs one PE does per cycle for given operand widths, where dequantization
happens, and nothing else; energy per PE-cycle comes from the energy table after the run.
Throughput follows bit slicing: a PE whose native operand width is `native` and whose smallest
slice is `min` does native/max(bits, min) operations per cycle on that operand, and needs
bits/native passes when bits > native (BRIEF section 6 gives the anchor points).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from mixpe_sim.config.models import HardwareConfig
from mixpe_sim.units import ceil_div

DequantPlacement = Literal["per_group", "per_weight", "per_output", "none"]


@dataclass(frozen=True, slots=True)
class PEKind:
    name: str
    native_weight_bits: int
    min_weight_bits: int
    native_activation_bits: int
    min_activation_bits: int


# MixPE: 4-bit weight slices against a full-width (<=16 bit) activation, 4 MACs/PE/cycle at W4.
# FP16/INT8: one MAC per cycle at their native width; weights are dequantized to that width first.
# BitFusion: 2-bit bricks fused up to 8 bit (W4A4 -> 4 MACs, W8A8 -> 1). ANT and OLAccel: 4-bit
# granularity (W4A4 -> 4 MACs, W8A8 -> 1).
PE_KINDS: dict[str, PEKind] = {
    "mixpe": PEKind("mixpe", 16, 4, 16, 16),
    "fp16": PEKind("fp16", 16, 16, 16, 16),
    "int8": PEKind("int8", 8, 8, 8, 8),
    "bitfusion": PEKind("bitfusion", 8, 2, 8, 2),
    "ant": PEKind("ant", 8, 4, 8, 4),
    "olaccel": PEKind("olaccel", 8, 4, 8, 4),
}


@dataclass(frozen=True, slots=True)
class Parallelism:
    """Operands one PE handles per cycle: `pf_a` activation rows, `pf_w` weight columns, and the
    number of passes `passes` needed when an operand is wider than the PE's native width."""

    pf_a: int
    pf_w: int
    passes: int

    @property
    def macs_per_pe_cycle(self) -> float:
        return self.pf_a * self.pf_w / self.passes


def _slice(bits: int, native: int, minimum: int) -> tuple[int, int]:
    effective = max(bits, minimum)
    if effective <= native:
        return native // effective, 1
    return 1, ceil_div(effective, native)


@lru_cache(maxsize=256)
def parallelism(kind: str, weight_bits: int, activation_bits: int) -> Parallelism:
    pe = PE_KINDS[kind]
    pf_w, passes_w = _slice(weight_bits, pe.native_weight_bits, pe.min_weight_bits)
    pf_a, passes_a = _slice(activation_bits, pe.native_activation_bits, pe.min_activation_bits)
    return Parallelism(pf_a=pf_a, pf_w=pf_w, passes=passes_w * passes_a)


@dataclass(frozen=True, slots=True)
class TileCost:
    """Cycles and action counts of one (Mt x Kt) x (Kt x Nt) tile on the array."""

    compute_cycles: int  # MAC cycles including fill/drain
    dequant_cycles: int  # cycles the dequant unit needs for this tile (overlapped with compute)
    port_cycles: int  # cycles the busiest buffer port needs (overlapped with compute)
    reduce_cycles: int  # cycles the K-split reduction unit needs (overlapped with the next tile)
    busy_cycles: int  # max of the four: how long the array is occupied
    macs: int
    dequant_ops: int
    reduce_ops: int  # partial sums folded together by the K-split reduction unit
    weight_passes: int  # times the weight tile streams out of its buffer
    activation_passes: int  # times the activation tile streams out of its buffer

    @property
    def overlap_stall_cause(self) -> str:
        """The overlapped resource that holds the MACs back when busy > compute (a stall cause)."""
        slowest = max(self.dequant_cycles, self.port_cycles, self.reduce_cycles)
        if slowest == self.dequant_cycles:
            return "dequant"
        return "buffer_port" if slowest == self.port_cycles else "k_split_reduce"


@dataclass(frozen=True, slots=True)
class GemmPrecision:
    """What the array needs to know about one GEMM to cost its tiles."""

    weight_bits: int
    activation_bits: int
    dequant: DequantPlacement
    group_size: int


@dataclass(frozen=True, slots=True)
class ArraySpec:
    """The array parameters the closed-form costs depend on (hashable, so costs can be cached)."""

    kind: str
    rows: int
    cols: int
    dataflow: str
    k_split_small_m: bool
    k_split_reduce_lanes: int
    dequant_lanes: int
    dequant_latency_cycles: int
    weight_port_bytes_per_cycle: int
    activation_port_bytes_per_cycle: int

    @classmethod
    def from_hw(cls, hw: HardwareConfig) -> ArraySpec:
        return cls(
            kind=hw.pe.kind,
            rows=hw.array.rows,
            cols=hw.array.cols,
            dataflow=hw.array.dataflow,
            k_split_small_m=hw.array.k_split_small_m,
            k_split_reduce_lanes=hw.array.k_split_reduce_lanes,
            dequant_lanes=hw.dequant.lanes,
            dequant_latency_cycles=hw.dequant.latency_cycles,
            weight_port_bytes_per_cycle=hw.buffers.weight.port_bytes_per_cycle,
            activation_port_bytes_per_cycle=hw.buffers.activation.port_bytes_per_cycle,
        )


def _max_k_split(array: ArraySpec, precision: GemmPrecision, mt: int, kt: int, row_slots: int) -> int:
    """How many row groups could share one output-stationary tile's K (1 without K-split).

    With fewer tile rows than row slots, up to `row_slots // mt` row groups each take a slice of K; a
    slice holds whole quantization groups so per-group dequant stays exact.
    """
    split = row_slots // mt if array.k_split_small_m else 1
    unit = precision.group_size if precision.dequant == "per_group" else 1
    return max(1, min(split, kt // unit))


def _k_slice_cycles(precision: GemmPrecision, kt: int, split: int) -> tuple[int, int]:
    """(cycles to stream Kt, pipeline depth of the reduction) for a K split `split` ways."""
    if split == 1:
        return kt, 0
    unit = precision.group_size if precision.dequant == "per_group" else 1
    return ceil_div(kt // unit, split) * unit, (split - 1).bit_length()


@lru_cache(maxsize=16384)
def k_split_factor(array: ArraySpec, precision: GemmPrecision, mt: int, nt: int, kt: int) -> int:
    """The split the controller picks for an output-stationary tile: among powers of two up to the
    most the rows allow, the one whose completing tile is busy shortest (MACs vs the reduction unit's
    mt*nt*(split-1) adds), the smaller on a tie. Every K tile of one output tile uses the same split."""
    par = parallelism(array.kind, precision.weight_bits, precision.activation_bits)
    folds_m = ceil_div(mt, array.rows * par.pf_a)
    most = _max_k_split(array, precision, mt * folds_m, kt, array.rows * par.pf_a)
    folds = folds_m * ceil_div(nt, array.cols * par.pf_w) * par.passes
    best, best_cycles = 1, None
    for split in sorted({1 << i for i in range(most.bit_length()) if 1 << i <= most} | {most}):
        k_cycles, depth = _k_slice_cycles(precision, kt, split)
        busy = max(folds * k_cycles + depth, ceil_div(mt * nt * (split - 1), array.k_split_reduce_lanes))
        if best_cycles is None or busy < best_cycles:
            best, best_cycles = split, busy
    return best


@lru_cache(maxsize=65536)
def tile_cost(array: ArraySpec, precision: GemmPrecision, mt: int, nt: int, kt: int,
              weight_tile_bytes: int, activation_tile_bytes: int, completes_output: bool = True) -> TileCost:
    """Closed-form cost of one tile; docs/modelling.md ("PE array") derives each term.

    Consecutive K tiles of one output tile stream back to back (the accumulators stay in the PEs),
    so the pipeline fill/drain and the K-split reduction are paid by the tile that completes it.
    """
    rows, cols = array.rows, array.cols
    par = parallelism(array.kind, precision.weight_bits, precision.activation_bits)
    fill_drain = rows + cols - 2 if completes_output else 0
    reduce_ops = 0
    if array.dataflow == "output_stationary":
        folds_m = ceil_div(mt, rows * par.pf_a)
        folds_n = ceil_div(nt, cols * par.pf_w)
        split = k_split_factor(array, precision, mt, nt, kt)
        k_cycles, depth = _k_slice_cycles(precision, kt, split)
        compute = folds_m * folds_n * k_cycles * par.passes + fill_drain
        if completes_output:
            compute += depth
            reduce_ops = mt * nt * (split - 1)
        weight_passes, activation_passes = folds_m, folds_n
    else:  # weight-stationary: K on rows, N on columns, activations stream through
        folds_k = ceil_div(kt, rows)
        folds_n = ceil_div(nt, cols * par.pf_w)
        stream = ceil_div(mt, par.pf_a) * par.passes
        compute = folds_k * folds_n * (stream + rows) + fill_drain  # + rows: weight preload per fold
        weight_passes, activation_passes = 1, folds_n
    if precision.dequant == "per_group":
        dequant_ops = mt * nt * (kt // precision.group_size)
    elif precision.dequant == "per_weight":
        dequant_ops = kt * nt * weight_passes
    elif precision.dequant == "per_output":
        dequant_ops = mt * nt if completes_output else 0
    else:
        dequant_ops = 0
    # the dequant pipeline fills once per output tile: consecutive K tiles stream through it back to back
    latency = array.dequant_latency_cycles if completes_output else 0
    dequant = ceil_div(dequant_ops, array.dequant_lanes) + latency if dequant_ops else 0
    port = max(
        ceil_div(weight_tile_bytes * weight_passes, array.weight_port_bytes_per_cycle),
        ceil_div(activation_tile_bytes * activation_passes, array.activation_port_bytes_per_cycle),
    )
    reduce = ceil_div(reduce_ops, array.k_split_reduce_lanes)
    return TileCost(
        compute_cycles=compute,
        dequant_cycles=dequant,
        port_cycles=port,
        reduce_cycles=reduce,
        busy_cycles=max(compute, dequant, port, reduce),
        macs=mt * nt * kt,
        dequant_ops=dequant_ops,
        reduce_ops=reduce_ops,
        weight_passes=weight_passes,
        activation_passes=activation_passes,
    )


def peak_macs_per_cycle(hw: HardwareConfig, weight_bits: int, activation_bits: int) -> float:
    par = parallelism(hw.pe.kind, weight_bits, activation_bits)
    return hw.array.rows * hw.array.cols * par.macs_per_pe_cycle
