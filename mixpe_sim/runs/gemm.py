"""`mixpe-sim gemm`: one mpGEMM of activations [M x K] by quantized weights [K x N]."""

from __future__ import annotations

import time
from typing import Any

from mixpe_sim import __version__
from mixpe_sim.arch.area import area_fields
from mixpe_sim.config.models import HardwareConfig
from mixpe_sim.engine.simulator import simulate
from mixpe_sim.report.bottleneck import bottleneck
from mixpe_sim.report.summary import stall_seconds, summarize
from mixpe_sim.runs.tally import tally_of
from mixpe_sim.trace.sink import NULL_SINK, TraceSink
from mixpe_sim.units import PS_PER_S, ceil_div
from mixpe_sim.workload.gemm import weight_gemm
from mixpe_sim.workload.lowering import ProgramBuilder
from mixpe_sim.workload.program import Program
from mixpe_sim.workload.tiling import TileBudget, Tiling, choose_tiling


def compile_gemm(hw: HardwareConfig, m: int, n: int, k: int) -> tuple[Program, Tiling]:
    spec = weight_gemm("gemm", m, n, k, hw)
    tiling = choose_tiling(spec, TileBudget.from_hw(hw), hw.dequant.placement)
    builder = ProgramBuilder()
    weights = builder.allocate(spec.weight_bytes)
    activations = builder.allocate(spec.activation_bytes)
    outputs = builder.allocate(spec.output_bytes)
    builder.add_gemm(spec, tiling, hw.dequant.placement, weights, activations, outputs)
    return builder.build(), tiling


def run_gemm(hw: HardwareConfig, m: int, n: int, k: int, trace: TraceSink = NULL_SINK) -> dict[str, Any]:
    started = time.perf_counter()
    program, tiling = compile_gemm(hw, m, n, k)
    raw = simulate(hw, program, trace)
    s = summarize(hw, program, raw)
    bound = bottleneck(hw, tally_of(hw, program, raw))
    cycles = ceil_div(s.time_ps * hw.core_freq_hz, PS_PER_S)
    return {
        "cycles": cycles,
        "time_s": s.time_ps / PS_PER_S,
        "compute_cycles": s.compute_cycles,
        "stall_cycles": max(0, cycles - s.compute_cycles),
        "macs": s.macs,
        "dequant_ops": s.dequant_ops,
        "dram_bytes_read": s.dram_bytes_read,
        "dram_bytes_written": s.dram_bytes_written,
        "energy_j": s.energy.total_j,
        "energy_breakdown_j": s.energy.as_dict(),
        "dram_energy_breakdown_j": s.energy.dram_classes_j,
        "stall_breakdown_s": stall_seconds(s.stall_ps),
        "dram_bw_utilization": s.dram_bw_utilization,
        "pe_utilization": s.pe_utilization,
        "memory": s.memory_stats,
        **area_fields(hw),
        "bottleneck": bound,
        "tiling": {"mt": tiling.mt, "nt": tiling.nt, "kt": tiling.kt, "order": tiling.order,
                   "weight_resident": tiling.weight_resident,
                   "activation_resident": tiling.activation_resident},
        "shape": {"m": m, "n": n, "k": k},
        "events": s.events,
        "wall_s": time.perf_counter() - started,
        "config": hw.model_dump(mode="json"),
        "version": __version__,
    }
