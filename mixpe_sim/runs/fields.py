"""Result keys every kind of result shares (gemm, step, request, serve), computed from an additive tally.

The same key means the same thing everywhere: `time_s` is the simulated time the result covers,
`compute_s + sum(stall_breakdown_s) = time_s`, and `time_breakdown_s` is that sum written out.
"""

from __future__ import annotations

import math
from typing import Any

from mixpe_sim._version import __version__
from mixpe_sim.arch.area import area_fields
from mixpe_sim.config.models import HardwareConfig
from mixpe_sim.energy import DRAM_CLASSES
from mixpe_sim.runs.tally import Tally
from mixpe_sim.units import PS_PER_S

SCHEMA_VERSION = 1  # bumped when a result key changes meaning or disappears (docs/results.md)
ENERGY_PARTS = ("dram_static", "dram", "buffer", "core")


def header(kind: str, time_s: float) -> dict[str, Any]:
    return {"kind": kind, "schema_version": SCHEMA_VERSION, "time_s": time_s}


def energy_fields(tally: Tally) -> dict[str, Any]:
    energy = {part: tally.get(f"energy.{part}", 0.0) for part in ENERGY_PARTS}
    return {"energy_j": sum(energy.values()), "energy_breakdown_j": energy,
            "dram_energy_breakdown_j": {cls: tally.get(f"dram_energy.{cls}", 0.0) for cls in DRAM_CLASSES}}


def traffic_fields(hw: HardwareConfig, tally: Tally, time_s: float) -> dict[str, Any]:
    read, written = tally.get("dram_bytes_read", 0.0), tally.get("dram_bytes_written", 0.0)
    peak = hw.memory.peak_bw_bytes_per_s
    pe_cycles = hw.array.rows * hw.array.cols * time_s * hw.core_freq_hz
    return {
        "dram_bytes_read": round(read),
        "dram_bytes_written": round(written),
        "dram_bw_utilization": (read + written) / (time_s * peak) if time_s and math.isfinite(peak) else 0.0,
        "pe_utilization": tally.get("active_pe_cycles", 0.0) / pe_cycles if pe_cycles else 0.0,
        "macs": round(tally.get("macs", 0.0)),
        "dequant_ops": round(tally.get("dequant_ops", 0.0)),
    }


def time_fields(tally: Tally) -> dict[str, Any]:
    """Where the PE array's time went: computing, or stalled (by cause); non-negative, summing to time.

    With block extrapolation a cause's share is a difference of two runs and can come out slightly
    negative (adding a block can shorten a wait elsewhere); such a share is shown as zero and the
    positive ones are scaled so the total is unchanged.
    """
    parts = {"compute": tally.get("compute_ps", 0.0) / PS_PER_S}
    parts.update({key.split(".", 1)[1]: value / PS_PER_S for key, value in tally.items() if key.startswith("stall.")})
    positive = sum(v for v in parts.values() if v > 0)
    if positive and any(v < 0 for v in parts.values()):
        scale = sum(parts.values()) / positive
        parts = {cause: v * scale if v > 0 else 0.0 for cause, v in parts.items()}
    stalls = {cause: v for cause, v in parts.items() if cause != "compute"}
    return {"compute_s": parts["compute"], "stall_breakdown_s": stalls, "time_breakdown_s": parts}


def hardware_fields(hw: HardwareConfig) -> dict[str, Any]:
    return dict(area_fields(hw))


def provenance(hw: HardwareConfig, workload: dict[str, Any], model: dict[str, Any] | None, events: int,
               wall_s: float) -> dict[str, Any]:
    """What produced the result: the same `config` layout for every kind of result."""
    return {"events": events, "wall_s": wall_s,
            "config": {"hardware": hw.model_dump(mode="json"), "model": model, "workload": workload},
            "version": __version__}
