"""Which resource binds a phase, and how close the phase runs to it.

Each resource's utilization is the work it did over the work it could have done in the phase's time:
DRAM bytes over peak bandwidth, SRAM port bytes over port width, array busy cycles over all cycles,
dequant / K-split-reduce / vector operations over their lanes. The binding resource is the busiest.
Input is the additive tally of a simulated phase (runs/tally.py), so it works on extrapolated steps.
"""

from __future__ import annotations

import math
from typing import Any

from mixpe_sim.config.models import HardwareConfig
from mixpe_sim.units import PS_PER_S

# the one-line labels of the resources
LABELS = {
    "dram": "the memory",
    "weight_port": "the weight-buffer port",
    "activation_port": "the activation-buffer port",
    "array": "the PE array",
    "dequant": "the dequant unit",
    "k_split_reduce": "the K-split reduction unit",
    "vector": "the vector unit",
}
ON_CHIP_PATHS = ("weight_port", "activation_port")
# below this fraction of its peak, a memory held back by an on-chip path is worth a warning
WASTED_MEMORY_FRACTION = 0.5


def port_bw_bytes_per_s(hw: HardwareConfig, resource: str) -> float:
    buffer = hw.buffers.weight if resource == "weight_port" else hw.buffers.activation
    return buffer.port_bytes_per_cycle * hw.core_freq_hz


def utilizations(hw: HardwareConfig, tally: dict[str, float]) -> dict[str, float]:
    time_ps = tally.get("time_ps", 0.0)
    if time_ps <= 0:
        return dict.fromkeys(LABELS, 0.0)
    cycles = time_ps * hw.core_freq_hz / PS_PER_S
    peak = hw.memory.peak_bw_bytes_per_s
    moved = tally.get("dram_bytes_read", 0.0) + tally.get("dram_bytes_written", 0.0)
    return {
        "dram": moved / (time_ps / PS_PER_S * peak) if math.isfinite(peak) else 0.0,
        # without a scale SRAM, scales and zero points are counted as weight-buffer reads
        "weight_port": tally.get("buffer.weight.bytes_read", 0.0) / (cycles * hw.buffers.weight.port_bytes_per_cycle),
        "activation_port": tally.get("buffer.activation.bytes_read", 0.0)
        / (cycles * hw.buffers.activation.port_bytes_per_cycle),
        "array": tally.get("compute_ps", 0.0) / time_ps,
        "dequant": tally.get("dequant_ops", 0.0) / (cycles * hw.dequant.lanes),
        "k_split_reduce": tally.get("reduce_ops", 0.0) / (cycles * hw.array.k_split_reduce_lanes),
        "vector": tally.get("vector_elements", 0.0) / (cycles * hw.vector.lanes),
    }


def bottleneck(hw: HardwareConfig, tally: dict[str, float]) -> dict[str, Any]:
    """`{resource, utilization, utilizations, summary, warning}` of one simulated phase."""
    use = utilizations(hw, tally)
    resource = max(use, key=lambda name: (use[name], name == "dram"))
    return {"resource": resource, "utilization": use[resource], "utilizations": use,
            "summary": _summary(hw, resource, use), "warning": _warning(hw, resource, use)}


def _gbs(bytes_per_s: float) -> str:
    return f"{bytes_per_s / 1e9:.0f} GB/s"


def _summary(hw: HardwareConfig, resource: str, use: dict[str, float]) -> str:
    text = f"bound by {LABELS[resource]} ({use[resource]:.0%} busy)"
    peak = hw.memory.peak_bw_bytes_per_s
    if resource in ON_CHIP_PATHS and port_bw_bytes_per_s(hw, resource) < peak:
        text += f": {_gbs(port_bw_bytes_per_s(hw, resource))} < memory {_gbs(peak)}"
    elif resource == "dram":
        text += f" of {hw.memory.name} {_gbs(peak)}" if math.isfinite(peak) else ""
    return text


def _warning(hw: HardwareConfig, resource: str, use: dict[str, float]) -> str | None:
    peak = hw.memory.peak_bw_bytes_per_s
    if resource not in ON_CHIP_PATHS or not math.isfinite(peak) or use["dram"] >= WASTED_MEMORY_FRACTION:
        return None
    return (f"{LABELS[resource]} ({_gbs(port_bw_bytes_per_s(hw, resource))}) holds {hw.memory.name} "
            f"({_gbs(peak)}) at {use['dram']:.0%} of its peak; widen buffers.*.port_bytes_per_cycle")
