"""Turn a RawRun into the quantities users ask for: time, stalls, traffic, utilisation, energy."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from mixpe_sim.config.models import DramMemoryConfig, HardwareConfig
from mixpe_sim.energy import EnergyBreakdown, energy_of
from mixpe_sim.engine.simulator import RawRun
from mixpe_sim.hardware.counters import STALL_CAUSES, OpCounters
from mixpe_sim.units import PS_PER_S
from mixpe_sim.workload.program import Program


@dataclass(frozen=True)
class Summary:
    time_ps: int
    compute_ps: int  # PE array doing MACs (incl. fill/drain)
    stall_ps: dict[str, int]  # PE array not doing MACs, by cause; compute + stalls = time
    macs: int
    dequant_ops: int
    compute_cycles: int
    dram_bytes_read: int
    dram_bytes_written: int
    dram_bw_utilization: float
    pe_utilization: float
    energy: EnergyBreakdown
    memory_stats: dict[str, Any]
    events: int


def summarize(hw: HardwareConfig, program: Program, raw: RawRun) -> Summary:
    gemm_ops = [c for c, op in zip(raw.ops, program.ops, strict=True) if op.kind == "gemm"]
    stalls = dict.fromkeys(STALL_CAUSES, 0)
    for counters in gemm_ops:
        for cause, value in counters.stall_ps.items():
            stalls[cause] += value
    stalls["drain"] += raw.time_ps - raw.array_end_ps
    if not gemm_ops:  # a program without GEMMs: the array idles for the whole run
        stalls["vector"] += raw.array_end_ps
    compute_ps = sum(c.busy_ps for c in gemm_ops)
    time_s = raw.time_ps / PS_PER_S
    peak_bw = hw.memory.peak_bw_bytes_per_s
    moved = raw.memory.bytes_read + raw.memory.bytes_written
    bw_util = 0.0 if math.isinf(peak_bw) or time_s == 0 else moved / (time_s * peak_bw)
    pe_cycles = hw.array.rows * hw.array.cols * raw.time_ps * hw.core_freq_hz / PS_PER_S
    active = sum(c.active_pe_cycles for c in gemm_ops)
    energy = energy_of(hw, raw.time_ps, raw.ops, [op.dequant for op in program.ops], raw.buffers, raw.memory)
    return Summary(
        time_ps=raw.time_ps, compute_ps=compute_ps, stall_ps=stalls,
        macs=sum(c.macs for c in gemm_ops), dequant_ops=sum(c.dequant_ops for c in gemm_ops),
        compute_cycles=sum(c.compute_cycles for c in gemm_ops),
        dram_bytes_read=raw.memory.bytes_read, dram_bytes_written=raw.memory.bytes_written,
        dram_bw_utilization=bw_util, pe_utilization=active / pe_cycles if pe_cycles else 0.0,
        energy=energy, memory_stats=memory_stats(hw, raw), events=raw.events,
    )


def memory_stats(hw: HardwareConfig, raw: RawRun) -> dict[str, Any]:
    mem = raw.memory
    time_s = raw.time_ps / PS_PER_S
    latencies = sorted(mem.read_latencies_ps)
    accesses = mem.row_hits + mem.row_misses
    return {
        "preset": hw.memory.name,
        "kind": hw.memory.kind,
        "achieved_bw_bytes_per_s": (mem.bytes_read + mem.bytes_written) / time_s if time_s else 0.0,
        # JSON has no infinity: the ideal memory's unbounded peak is reported as null
        "peak_bw_bytes_per_s": hw.memory.peak_bw_bytes_per_s if math.isfinite(hw.memory.peak_bw_bytes_per_s) else None,
        "row_hit_rate": mem.row_hits / accesses if isinstance(hw.memory, DramMemoryConfig) and accesses else None,
        "channel_utilization": [busy / raw.time_ps if raw.time_ps else 0.0 for busy in mem.channel_busy_ps],
        "read_latency_mean_s": sum(latencies) / len(latencies) / PS_PER_S if latencies else 0.0,
        "read_latency_p99_s": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] / PS_PER_S
        if latencies else 0.0,
        "requests": mem.requests,
    }


def stall_seconds(stalls_ps: dict[str, int]) -> dict[str, float]:
    return {cause: value / PS_PER_S for cause, value in stalls_ps.items()}


def op_summary(counters: OpCounters) -> dict[str, Any]:
    return {
        "macs": counters.macs,
        "dequant_ops": counters.dequant_ops,
        "busy_s": counters.busy_ps / PS_PER_S,
        "stall_s": stall_seconds(counters.stall_ps),
        "tiles": counters.tiles,
    }
