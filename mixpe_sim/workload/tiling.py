"""Choose tile sizes and loop order for a GEMM: pure search over a small candidate set.

Constraints: every tile fits its buffer (half of it when double-buffered), Kt is a multiple of the
quantization group. Objective: estimated cycles max(compute, DRAM traffic / peak bandwidth), then
DRAM traffic, then fewer steps. Loop orders (k always innermost, so partial sums stay on chip):
  mnk: for each M block, sweep N. Activations of the M block stay resident if they fit.
  nmk: for each N block, sweep M. The K x Nt weight column stays resident if it fits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Literal

from mixpe_sim.arch.pe import ArraySpec, GemmPrecision, parallelism, tile_cost
from mixpe_sim.config.models import BufferConfig, HardwareConfig
from mixpe_sim.errors import WorkloadError
from mixpe_sim.units import BITS_PER_BYTE, ceil_div
from mixpe_sim.workload.gemm import GemmSpec

LoopOrder = Literal["mnk", "nmk"]


@dataclass(frozen=True, slots=True)
class BufferBudget:
    capacity_bytes: int
    tile_bytes: int  # largest single tile: half the capacity when double-buffered

    @classmethod
    def of(cls, cfg: BufferConfig) -> BufferBudget:
        half = cfg.capacity_bytes // 2 if cfg.double_buffered else cfg.capacity_bytes
        return cls(cfg.capacity_bytes, half)


@dataclass(frozen=True, slots=True)
class TileBudget:
    array: ArraySpec
    weight: BufferBudget
    scale: BufferBudget | None  # None: scales share the weight buffer
    activation: BufferBudget
    output: BufferBudget
    psum_bits: int
    dram_bytes_per_cycle: float

    @classmethod
    def from_hw(cls, hw: HardwareConfig) -> TileBudget:
        b = hw.buffers
        return cls(
            array=ArraySpec.from_hw(hw),
            weight=BufferBudget.of(b.weight),
            scale=BufferBudget.of(b.scale) if b.scale else None,
            activation=BufferBudget.of(b.activation),
            output=BufferBudget.of(b.output),
            psum_bits=hw.array.psum_bits,
            dram_bytes_per_cycle=hw.memory.peak_bw_bytes_per_s / hw.core_freq_hz,
        )


@dataclass(frozen=True, slots=True)
class Tiling:
    mt: int
    nt: int
    kt: int
    order: LoopOrder
    weight_resident: bool
    activation_resident: bool
    est_cycles: float
    est_dram_bytes: int
    est_compute_cycles: float  # the array's share of est_cycles: less leaves slack to hide DRAM jitter


def candidate_sizes(base: int, limit: int) -> list[int]:
    """base x {1, 2, 3, 4, 6, 8, 12, ...} below `limit`, plus `limit` itself."""
    values = {limit}
    for factor in (1, 3):
        v = base * factor
        while v < limit:
            values.add(v)
            v *= 2
    return sorted(values)


def precision_of(spec: GemmSpec, placement: str) -> GemmPrecision:
    return GemmPrecision(
        weight_bits=spec.weight_bits,
        activation_bits=spec.activation_bits,
        dequant=placement if spec.quantized else "none",  # type: ignore[arg-type]
        group_size=spec.group_size or 1,
    )


def _weight_fits(spec: GemmSpec, budget: TileBudget, kt: int, nt: int, capacity: bool = False) -> bool:
    payload, scales = spec.weight_tile_bytes(kt, nt)
    w_limit = budget.weight.capacity_bytes if capacity else budget.weight.tile_bytes
    if budget.scale is None:
        return payload + scales <= w_limit
    s_limit = budget.scale.capacity_bytes if capacity else budget.scale.tile_bytes
    return payload <= w_limit and scales <= s_limit


def choose_tiling(spec: GemmSpec, budget: TileBudget, placement: str, row_limit: int = 0) -> Tiling:
    """Best tiling; `row_limit` > 0 caps Mt (causal attention bounds its diagonal-tile waste)."""
    # the search depends on the shape only: one search serves every block's copy of a GEMM
    tiling = _best_tiling(replace(spec, name="", layer=-1), budget, placement, row_limit)
    if tiling is None:
        raise WorkloadError(_too_small_message(spec, budget, placement, row_limit))
    return tiling


def _options(spec: GemmSpec, budget: TileBudget, placement: str, row_limit: int) -> tuple[list[int], ...]:
    """Candidate (Kt, Nt, Mt) sizes: Kt whole quantization groups, Nt and Mt from the array's folds."""
    arr = budget.array
    par = parallelism(arr.kind, spec.weight_bits, spec.activation_bits)
    # per-group dequant needs whole groups in a tile; other placements only need sensible sizes
    k_base = spec.group_size if spec.quantized and placement == "per_group" else min(spec.k, 16)
    k_options = [k for k in candidate_sizes(k_base, spec.k) if k % k_base == 0 or k == spec.k]
    n_options = candidate_sizes(min(spec.n, arr.cols * par.pf_w), spec.n)
    m_options = candidate_sizes(min(spec.m, arr.rows * par.pf_a), spec.m)
    if row_limit:
        m_options = [m for m in m_options if m <= row_limit] or m_options[:1]
    return k_options, n_options, m_options


@lru_cache(maxsize=4096)
def _best_tiling(spec: GemmSpec, budget: TileBudget, placement: str, row_limit: int) -> Tiling | None:
    precision = precision_of(spec, placement)
    k_options, n_options, m_options = _options(spec, budget, placement, row_limit)
    best: tuple[tuple[float, int, int, int], Tiling] | None = None
    for kt in k_options:
        for nt in n_options:
            if not _weight_fits(spec, budget, kt, nt):
                continue
            for mt in m_options:
                if spec.activation_tile_bytes(mt, kt) > budget.activation.tile_bytes:
                    continue
                if ceil_div(mt * nt * budget.psum_bits, BITS_PER_BYTE) > budget.output.tile_bytes:
                    continue
                for order in ("mnk", "nmk"):
                    tiling = _estimate(spec, budget, precision, mt, nt, kt, order)  # type: ignore[arg-type]
                    steps = ceil_div(spec.m, mt) * ceil_div(spec.n, nt) * ceil_div(spec.k, kt)
                    key = (tiling.est_cycles, tiling.est_dram_bytes, tiling.est_compute_cycles, steps)
                    if best is None or key < best[0]:
                        best = (key, tiling)
    return None if best is None else best[1]


def _estimate(spec: GemmSpec, budget: TileBudget, precision: GemmPrecision,
              mt: int, nt: int, kt: int, order: LoopOrder) -> Tiling:
    m_tiles, n_tiles = ceil_div(spec.m, mt), ceil_div(spec.n, nt)
    a_tile = spec.activation_tile_bytes(mt, kt)
    per_instance_w = spec.weight_bytes // spec.instances
    per_instance_a = spec.activation_bytes // spec.instances
    if order == "mnk":
        weight_resident = False
        activation_resident = n_tiles > 1 and (
            spec.activation_tile_bytes(mt, spec.k) + a_tile <= budget.activation.capacity_bytes
        )
        w_traffic = per_instance_w * m_tiles
        a_traffic = per_instance_a * (1 if activation_resident else n_tiles)
    else:
        activation_resident = n_tiles > 1 and per_instance_a + a_tile <= budget.activation.capacity_bytes
        weight_resident = m_tiles > 1 and _weight_fits(spec, budget, spec.k + kt, nt, capacity=True)
        w_traffic = per_instance_w * (1 if weight_resident else m_tiles)
        a_traffic = per_instance_a * (1 if activation_resident else n_tiles)
    traffic = (w_traffic + a_traffic) * spec.instances + spec.output_bytes
    compute = array_cycles(spec, budget, precision, mt, nt, kt)
    memory = 0.0 if math.isinf(budget.dram_bytes_per_cycle) else traffic / budget.dram_bytes_per_cycle
    return Tiling(mt, nt, kt, order, weight_resident, activation_resident, max(compute, memory), traffic, compute)


def _extents(total: int, tile: int) -> list[tuple[int, int]]:
    """(size, count) of the tiles covering `total`: full tiles and the remainder."""
    full, rest = divmod(total, tile)
    return [(tile, full)] * (full > 0) + [(rest, 1)] * (rest > 0)


def array_cycles(spec: GemmSpec, budget: TileBudget, precision: GemmPrecision, mt: int, nt: int, kt: int) -> int:
    """The array's busy cycles for the whole GEMM with every tile at its real size (a remainder tile
    costs what it computes, not a full tile: ranking tilings by full-size remainders would favour
    sizes that divide the GEMM into many small tiles)."""
    k_tiles = _extents(spec.k, kt)
    compute = 0
    for m_size, m_count in _extents(spec.m, mt):
        for n_size, n_count in _extents(spec.n, nt):
            per_output = 0
            for index, (k_size, k_count) in enumerate(k_tiles):
                w_payload, w_scales = spec.weight_tile_bytes(k_size, n_size)
                inner, last = (tile_cost(budget.array, precision, m_size, n_size, k_size, w_payload + w_scales,
                                         spec.activation_tile_bytes(m_size, k_size), completes).busy_cycles
                               for completes in (False, True))
                # an output's last K tile pays the fill/drain: the remainder tile if there is one
                completing = 1 if index == len(k_tiles) - 1 else 0
                per_output += (k_count - completing) * inner + completing * last
            compute += m_count * n_count * per_output
    return compute * spec.instances


def _too_small_message(spec: GemmSpec, budget: TileBudget, placement: str, row_limit: int) -> str:
    (kt, *_), (nt, *_), (mt, *_) = _options(spec, budget, placement, row_limit)
    payload, scales = spec.weight_tile_bytes(kt, nt)
    needs = {
        "buffers.weight.capacity_bytes": (payload + (scales if budget.scale is None else 0), budget.weight),
        "buffers.activation.capacity_bytes": (spec.activation_tile_bytes(mt, kt), budget.activation),
        "buffers.output.capacity_bytes": (ceil_div(mt * nt * budget.psum_bits, BITS_PER_BYTE), budget.output),
    }
    if budget.scale is not None:
        needs["buffers.scale.capacity_bytes"] = (scales, budget.scale)
    for key, (need, buf) in needs.items():
        if need > buf.tile_bytes:
            # a double-buffered buffer holds two tiles: capacity // 2 per tile
            minimum = 2 * need if buf.tile_bytes != buf.capacity_bytes else need
            return (f"{key}: too small for one tile of {spec.name} (smallest tile {mt}x{nt}x{kt} needs "
                    f"{need} bytes per tile, the buffer holds {buf.tile_bytes} per tile; "
                    f"allowed: >= {minimum})")
    return f"{spec.name}: no tiling fits the buffers"
