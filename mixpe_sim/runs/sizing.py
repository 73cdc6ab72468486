"""Iso-area sizing: the best configuration of a design within a target area (a small search).

The rule (docs/designs.md): keep the design's PE kind, precision, buffers and clock; search the array
shape, the dequant lanes and (when the design splits K) the reduction lanes; keep the candidates whose
total area is within `tolerance` of the target; among them take the one with the best estimated
throughput per mm^2 on the model's weight GEMMs, prefill and decode weighted alike (geometric mean of
the two estimated times). The estimate is the tiler's closed form (array, dequant, ports, peak memory
bandwidth), so the search is fast; the chosen design is then simulated like any other.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mixpe_sim.arch.area import area_breakdown_mm2, total_area_mm2
from mixpe_sim.arch.pe import ArraySpec, parallelism, tile_cost
from mixpe_sim.config.models import HardwareConfig
from mixpe_sim.errors import ConfigError, WorkloadError
from mixpe_sim.units import ceil_div
from mixpe_sim.workload.gemm import GemmSpec, weight_gemms
from mixpe_sim.workload.models import ModelSpec
from mixpe_sim.workload.tiling import TileBudget, choose_tiling, precision_of

# +-2.5 % around the target keeps any two sized designs within 5 % of each other
ISO_AREA_TOLERANCE = 0.025
ARRAY_SIDES = (8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256)
# dequant lanes as multiples of the array's columns (per-weight: one weight per column per cycle)
LANES_PER_COLUMN = (0.25, 0.5, 1, 2, 4, 8)
REDUCE_LANES = (16, 32, 64, 128, 256)


@dataclass(frozen=True)
class SizedDesign:
    hw: HardwareConfig
    area_mm2: float
    target_area_mm2: float
    est_prefill_cycles: float
    est_decode_cycles: float
    candidates: int  # how many configurations were within the area window

    def describe(self) -> dict[str, Any]:
        return {"rows": self.hw.array.rows, "cols": self.hw.array.cols, "dequant_lanes": self.hw.dequant.lanes,
                "k_split_reduce_lanes": self.hw.array.k_split_reduce_lanes if self.hw.array.k_split_small_m
                else None, "area_mm2": self.area_mm2, "target_area_mm2": self.target_area_mm2,
                "candidates_in_window": self.candidates}


def gemm_estimate_cycles(hw: HardwareConfig, spec: GemmSpec) -> float:
    """Closed-form cycles of one GEMM: output tiles of two array folds each way spanning all of K,
    costed by the array's tile formula (MACs, dequant, ports, K-split reduction), against the time the
    memory needs at peak bandwidth to bring every weight and activation once."""
    array = ArraySpec.from_hw(hw)
    par = parallelism(array.kind, spec.weight_bits, spec.activation_bits)
    mt = min(spec.m, 2 * array.rows * par.pf_a)
    nt = min(spec.n, 2 * array.cols * par.pf_w)
    payload, scales = spec.weight_tile_bytes(spec.k, nt)
    cost = tile_cost(array, precision_of(spec, hw.dequant.placement), mt, nt, spec.k, payload + scales,
                     spec.activation_tile_bytes(mt, spec.k))
    compute = ceil_div(spec.m, mt) * ceil_div(spec.n, nt) * cost.busy_cycles
    memory = (spec.weight_bytes + spec.activation_bytes) / (hw.memory.peak_bw_bytes_per_s / hw.core_freq_hz)
    return max(compute, memory)


def estimated_cycles(hw: HardwareConfig, model: ModelSpec, rows: int) -> float:
    return sum(count * gemm_estimate_cycles(hw, spec) for count, spec in weight_gemms(hw, model, rows))


def _fits(hw: HardwareConfig, model: ModelSpec, rows: int) -> bool:
    """Whether the tiler finds a tiling of every weight GEMM in the design's buffers."""
    budget = TileBudget.from_hw(hw)
    try:
        for _, spec in weight_gemms(hw, model, rows):
            choose_tiling(spec, budget, hw.dequant.placement)
    except WorkloadError:
        return False
    return True


def _candidates(base: HardwareConfig) -> Iterator[HardwareConfig]:
    reduce_options = REDUCE_LANES if base.array.k_split_small_m else (base.array.k_split_reduce_lanes,)
    for rows in ARRAY_SIDES:
        for cols in ARRAY_SIDES:
            lane_options = sorted({max(1, round(cols * f)) for f in LANES_PER_COLUMN})
            for lanes in lane_options:
                for reduce_lanes in reduce_options:
                    yield base.model_copy(update={
                        "array": base.array.model_copy(update={"rows": rows, "cols": cols,
                                                               "k_split_reduce_lanes": reduce_lanes}),
                        "dequant": base.dequant.model_copy(update={"lanes": lanes}),
                    })


def size_to_area(base: HardwareConfig, target_area_mm2: float, model: ModelSpec, prompt: int,
                 tolerance: float = ISO_AREA_TOLERANCE) -> SizedDesign:
    """The best configuration of `base` whose area is within `tolerance` of `target_area_mm2`.

    Candidates are unvalidated copies that differ only in positive array sizes and lane counts (the
    base was validated when loaded); the chosen one is validated again before it is returned.
    """
    in_window = [(total_area_mm2(c), c) for c in _candidates(base)]
    in_window = [(a, c) for a, c in in_window if abs(a / target_area_mm2 - 1) <= tolerance]
    if not in_window:
        fixed = total_area_mm2(base) - sum(_compute_area(base))
        raise ConfigError("--iso-area", base.name,
                          f"no configuration of '{base.name}' fits {target_area_mm2:.2f} mm^2 within "
                          f"{tolerance:.1%} (its buffers and vector unit alone take {fixed:.2f} mm^2)")
    ranked = []
    for area, candidate in in_window:
        prefill = estimated_cycles(candidate, model, prompt)
        decode = estimated_cycles(candidate, model, 1)
        # estimated time x area: lower is more throughput per mm^2
        ranked.append((math.sqrt(prefill * decode) * area, area, prefill, decode, candidate))
    ranked.sort(key=lambda entry: entry[:2])
    for _, area, prefill, decode, candidate in ranked:
        if _fits(candidate, model, prompt) and _fits(candidate, model, 1):
            sized = HardwareConfig.model_validate({**candidate.model_dump(), "name": f"{base.name}-iso"})
            return SizedDesign(sized, area, target_area_mm2, prefill, decode, len(in_window))
    raise ConfigError("--iso-area", base.name, f"no configuration of '{base.name}' within {tolerance:.1%} of "
                      f"{target_area_mm2:.2f} mm^2 has buffers that hold one tile of every GEMM")


def _compute_area(hw: HardwareConfig) -> tuple[float, ...]:
    parts = area_breakdown_mm2(hw)
    return parts["pe_array"], parts["k_split_reduce"], parts["dequant"]
