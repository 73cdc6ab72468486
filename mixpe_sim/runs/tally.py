"""Additive measurements of one simulated step, as a flat mapping that can be scaled and summed.

Every quantity here is linear in what was simulated (time, counts, energy), so a steady-state block
can be extrapolated and decode steps interpolated by plain linear combinations.
"""

from __future__ import annotations

from collections.abc import Iterable

from mixpe_sim.config.models import HardwareConfig
from mixpe_sim.engine.simulator import RawRun
from mixpe_sim.runs.summary import summarize
from mixpe_sim.workload.models import op_base_name
from mixpe_sim.workload.program import Program

Tally = dict[str, float]


def tally_of(hw: HardwareConfig, program: Program, raw: RawRun) -> Tally:
    s = summarize(hw, program, raw)
    t: Tally = {
        "time_ps": s.time_ps,
        "compute_ps": s.compute_ps,
        "macs": s.macs,
        "dequant_ops": s.dequant_ops,
        "compute_cycles": s.compute_cycles,
        "dram_bytes_read": s.dram_bytes_read,
        "dram_bytes_written": s.dram_bytes_written,
        "active_pe_cycles": sum(c.active_pe_cycles for c, op in zip(raw.ops, program.ops, strict=True)
                                if op.kind == "gemm"),
        "reduce_ops": sum(c.reduce_ops for c in raw.ops),
        "vector_elements": sum(c.vector_elements for c in raw.ops),
    }
    for name, buffer in raw.buffers.items():
        t[f"buffer.{name}.bytes_read"] = buffer.bytes_read
    for cause, value in s.stall_ps.items():
        t[f"stall.{cause}"] = value
    for part, value in s.energy.as_dict().items():
        t[f"energy.{part}"] = value
    for cls, value in s.energy.dram_classes_j.items():
        t[f"dram_energy.{cls}"] = value
    for op, c, moved in zip(program.ops, raw.ops, program.dram_bytes_per_op(), strict=True):
        prefix = f"op.{op_base_name(op.name)}."
        stalled = sum(c.stall_ps.values())
        per_cause = ((f"stall.{cause}", value) for cause, value in c.stall_ps.items())
        for key, value in (("calls", 1), ("busy_ps", c.busy_ps), ("stall_ps", stalled), ("macs", c.macs),
                           ("dequant_ops", c.dequant_ops), ("tiles", c.tiles), ("dram_bytes", moved), *per_cause):
            t[prefix + key] = t.get(prefix + key, 0) + value
        # attention vs linear vs vector: per op (counted like calls, so it survives extrapolation) and summed
        t[f"{prefix}in.{op.group}"] = t.get(f"{prefix}in.{op.group}", 0) + 1
        for key, value in (("busy_ps", c.busy_ps), ("stall_ps", stalled), ("macs", c.macs), ("dram_bytes", moved)):
            t[f"group.{op.group}.{key}"] = t.get(f"group.{op.group}.{key}", 0) + value
        if op.kind == "gemm" and op.layer >= 0:
            layer_key = f"layer.{op.layer}"
            t[layer_key] = t.get(layer_key, 0) + c.busy_ps + stalled
    return t


def combine(terms: Iterable[tuple[float, Tally]]) -> Tally:
    """sum(weight * tally) over the terms, key by key."""
    out: Tally = {}
    for weight, tally in terms:
        for key, value in tally.items():
            out[key] = out.get(key, 0.0) + weight * value
    return out


def layer_times(tally: Tally) -> list[float]:
    indices = sorted(int(k.split(".")[1]) for k in tally if k.startswith("layer."))
    return [tally[f"layer.{i}"] for i in indices]


def without_layers(tally: Tally) -> Tally:
    return {k: v for k, v in tally.items() if not k.startswith("layer.")}
