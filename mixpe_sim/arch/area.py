"""Silicon area of a design: every component a knob changes, priced from the area table.

Pure functions of the hardware config (no SimPy). Figures and their sources: configs/area/*.yaml and
docs/modelling.md ("Area"). Controller, DMA engines, NoC and I/O are not modelled (the same for
every design, and not published for the paper's).
"""

from __future__ import annotations

from mixpe_sim.config.models import BufferConfig, DequantLaneKind, HardwareConfig, SramMacro
from mixpe_sim.units import BITS_PER_BYTE, ceil_div

UM2_PER_MM2 = 1e6
INTEGER_PE_KINDS = frozenset({"int8", "bitfusion", "ant", "olaccel"})


def sram_macros(buffer: BufferConfig, macro: SramMacro) -> int:
    """Macros a buffer needs: enough for its capacity and, side by side, for its port width.

    Each macro reads `width_bits` per cycle, so a port wider than the capacity's macros can serve
    needs more (smaller-than-full) macros: a wide port costs area once it outgrows the banking.
    """
    by_capacity = ceil_div(buffer.capacity_bytes, macro.capacity_bytes)
    by_port = ceil_div(buffer.port_bytes_per_cycle * BITS_PER_BYTE, macro.width_bits)
    return max(by_capacity, by_port)


def dequant_lane_kind(hw: HardwareConfig) -> DequantLaneKind:
    placement = hw.dequant.placement
    if placement == "per_weight":
        return "per_weight_int" if hw.pe.kind in INTEGER_PE_KINDS else "per_weight_fp"
    return placement


def reduce_adder_um2(hw: HardwareConfig) -> float:
    """One adder of the K-split reduction unit: FP16 for 16-bit activations, else 32-bit integer."""
    area = hw.area
    return area.fp_adder_um2 if hw.quant.activation_bits >= 16 else area.int_adder_um2


def area_breakdown_mm2(hw: HardwareConfig) -> dict[str, float]:
    """Area of each component in mm^2 (keys: pe_array, k_split_reduce, dequant, vector, and one
    `buffer.<name>` per SRAM)."""
    area = hw.area
    pes = hw.array.rows * hw.array.cols
    parts = {
        "pe_array": pes * area.pe_um2[hw.pe.area_class] / UM2_PER_MM2,
        "k_split_reduce": (hw.array.k_split_reduce_lanes * reduce_adder_um2(hw) / UM2_PER_MM2
                           if hw.array.k_split_small_m else 0.0),
        "dequant": hw.dequant.lanes * area.dequant_lane_um2[dequant_lane_kind(hw)] / UM2_PER_MM2,
        "vector": hw.vector.lanes * area.vector_lane_um2 / UM2_PER_MM2,
    }
    buffers = {"weight": hw.buffers.weight, "activation": hw.buffers.activation, "output": hw.buffers.output}
    if hw.buffers.scale is not None:
        buffers["scale"] = hw.buffers.scale
    for name, buffer in buffers.items():
        macro = area.sram_macro[name]  # type: ignore[index]
        parts[f"buffer.{name}"] = sram_macros(buffer, macro) * macro.area_mm2
    return parts


def total_area_mm2(hw: HardwareConfig) -> float:
    return sum(area_breakdown_mm2(hw).values())


def area_fields(hw: HardwareConfig) -> dict[str, object]:
    """The `area_mm2` and `area_breakdown_mm2` keys every result carries."""
    parts = area_breakdown_mm2(hw)
    return {"area_mm2": sum(parts.values()), "area_breakdown_mm2": parts, "process_nm": hw.area.process_nm}
