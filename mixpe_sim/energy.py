"""Energy after the run: action counts x the technology table (Accelergy style).

core: PE leakage for every PE over the whole run + dynamic energy per active PE-cycle + dequant ops
+ vector-unit element ops + K-split reduction adds. buffer: bits read/written per SRAM. dram: bits read/written.
dram_static: background power x run time.
"""

from __future__ import annotations

from dataclasses import dataclass

from mixpe_sim.config.models import HardwareConfig
from mixpe_sim.engine.counters import BufferCounters, OpCounters
from mixpe_sim.hardware.memory import MemoryCounters
from mixpe_sim.units import BITS_PER_BYTE, PS_PER_S

PJ_PER_J = 1e12


@dataclass(frozen=True)
class EnergyBreakdown:
    dram_static_j: float
    dram_j: float
    buffer_j: float
    core_j: float

    @property
    def total_j(self) -> float:
        return self.dram_static_j + self.dram_j + self.buffer_j + self.core_j

    def as_dict(self) -> dict[str, float]:
        return {"dram_static": self.dram_static_j, "dram": self.dram_j, "buffer": self.buffer_j,
                "core": self.core_j}


def energy_of(hw: HardwareConfig, time_ps: int, ops: list[OpCounters], op_dequant: list[str],
              buffers: dict[str, BufferCounters], memory: MemoryCounters) -> EnergyBreakdown:
    table = hw.energy
    pe = table.pe[hw.pe.energy_class]
    pes = hw.array.rows * hw.array.cols
    reduce_pj_per_add = (table.reduce_fp_pj_per_add if hw.quant.activation_bits >= 16
                         else table.reduce_int_pj_per_add)
    cycles = time_ps * hw.core_freq_hz / PS_PER_S
    core_pj = pe.leakage_pj_per_pe_cycle * pes * cycles
    for counters, placement in zip(ops, op_dequant, strict=True):
        core_pj += pe.dynamic_pj_per_pe_cycle * counters.active_pe_cycles
        # a per-output rescale does the same multiply-adds as a per-group one
        per_op = (table.dequant_per_weight_pj_per_op if placement == "per_weight"
                  else table.dequant_per_group_pj_per_op)
        core_pj += per_op * counters.dequant_ops
        core_pj += table.vector_pj_per_element * counters.vector_elements
        core_pj += reduce_pj_per_add * counters.reduce_ops
    buffer_pj = 0.0
    for name, counters in buffers.items():
        sram = table.sram[name]  # type: ignore[index]
        buffer_pj += BITS_PER_BYTE * (counters.bytes_read * sram.read_pj_per_bit
                                      + counters.bytes_written * sram.write_pj_per_bit)
    mem_energy = hw.memory.energy
    dram_pj = BITS_PER_BYTE * (memory.bytes_read * mem_energy.read_pj_per_bit
                               + memory.bytes_written * mem_energy.write_pj_per_bit)
    return EnergyBreakdown(
        dram_static_j=mem_energy.background_power_w * time_ps / PS_PER_S,
        dram_j=dram_pj / PJ_PER_J,
        buffer_j=buffer_pj / PJ_PER_J,
        core_j=core_pj / PJ_PER_J,
    )
