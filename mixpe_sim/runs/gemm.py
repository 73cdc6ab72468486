"""`mixpe-sim gemm`: one mpGEMM of activations [M x K] by quantized weights [K x N]."""

from __future__ import annotations

import time
from typing import Any

from mixpe_sim.config.models import HardwareConfig
from mixpe_sim.engine.simulator import simulate
from mixpe_sim.report.bottleneck import bottleneck
from mixpe_sim.runs.fields import energy_fields, hardware_fields, header, provenance, time_fields, traffic_fields
from mixpe_sim.runs.summary import memory_stats
from mixpe_sim.runs.tally import tally_of
from mixpe_sim.trace.sink import NULL_SINK, TraceSink
from mixpe_sim.units import PS_PER_S, ceil_div
from mixpe_sim.workload.gemm import weight_gemm
from mixpe_sim.workload.lowering import ProgramBuilder, allocation_alignment_bytes
from mixpe_sim.workload.program import Program
from mixpe_sim.workload.tiling import TileBudget, Tiling, choose_tiling


def compile_gemm(hw: HardwareConfig, m: int, n: int, k: int) -> tuple[Program, Tiling]:
    spec = weight_gemm("gemm", m, n, k, hw)
    tiling = choose_tiling(spec, TileBudget.from_hw(hw), hw.dequant.placement)
    builder = ProgramBuilder(align_bytes=allocation_alignment_bytes(hw))
    weights = builder.allocate(spec.weight_bytes)
    activations = builder.allocate(spec.activation_bytes)
    outputs = builder.allocate(spec.output_bytes)
    builder.add_gemm(spec, tiling, hw.dequant.placement, weights, activations, outputs)
    return builder.build(), tiling


def run_gemm(hw: HardwareConfig, m: int, n: int, k: int, trace: TraceSink = NULL_SINK) -> dict[str, Any]:
    """One mpGEMM Y[m x n] = A[m x k] @ W[k x n] (W at the hardware's quantization) from an idle machine."""
    started = time.perf_counter()
    program, tiling = compile_gemm(hw, m, n, k)
    raw = simulate(hw, program, trace)
    tally = tally_of(hw, program, raw)
    time_s = raw.time_ps / PS_PER_S
    cycles = ceil_div(raw.time_ps * hw.core_freq_hz, PS_PER_S)
    compute_cycles = round(tally["compute_cycles"])
    return {
        **header("gemm", time_s),
        "cycles": cycles,
        "compute_cycles": compute_cycles,
        "stall_cycles": max(0, cycles - compute_cycles),
        **energy_fields(tally),
        **traffic_fields(hw, tally, time_s),
        **time_fields(tally),
        "memory": memory_stats(hw, raw),
        **hardware_fields(hw),
        "bottleneck": bottleneck(hw, tally),
        "tiling": {"mt": tiling.mt, "nt": tiling.nt, "kt": tiling.kt, "order": tiling.order,
                   "weight_resident": tiling.weight_resident,
                   "activation_resident": tiling.activation_resident},
        "shape": {"m": m, "n": n, "k": k},
        **provenance(hw, {"m": m, "n": n, "k": k}, None, raw.events, time.perf_counter() - started),
    }
