"""Energy after the run: action counts x the technology table (Accelergy style).

core: PE leakage for every PE over the whole run + dynamic energy per active PE-cycle + dequant ops
+ vector-unit element ops + K-split reduction adds. buffer: bits read/written per SRAM.
dram: per command for DRAM presets (activate+precharge, read and write bursts, interface I/O per bit,
refresh), per bit moved for the paper's flat memory. dram_static: background power over the run time
(DRAM: active standby while some row is open, precharge standby while all are closed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mixpe_sim.config.models import DramMemoryConfig, HardwareConfig
from mixpe_sim.hardware.counters import BufferCounters, OpCounters
from mixpe_sim.hardware.memory import MemoryCounters
from mixpe_sim.units import BITS_PER_BYTE, PS_PER_S, ns_to_ps

PJ_PER_J = 1e12
MW_PER_W = 1e3
# DRAM energy by command class (dram_energy_breakdown_j); the first five add up to `dram`, the
# background ones to `dram_static`
DRAM_CLASSES = ("activate", "read", "write", "io", "refresh", "background_active", "background_precharged")
DRAM_COMMAND_CLASSES = DRAM_CLASSES[:5]


@dataclass(frozen=True)
class EnergyBreakdown:
    dram_static_j: float
    dram_j: float
    buffer_j: float
    core_j: float
    dram_classes_j: dict[str, float] = field(default_factory=dict)

    @property
    def total_j(self) -> float:
        return self.dram_static_j + self.dram_j + self.buffer_j + self.core_j

    def as_dict(self) -> dict[str, float]:
        return {"dram_static": self.dram_static_j, "dram": self.dram_j, "buffer": self.buffer_j,
                "core": self.core_j}


def energy_of(hw: HardwareConfig, time_ps: int, ops: list[OpCounters], op_dequant: list[str],
              buffers: dict[str, BufferCounters], memory: MemoryCounters) -> EnergyBreakdown:
    if isinstance(hw.memory, DramMemoryConfig):
        classes = dram_energy_j(hw.memory, time_ps, memory)
    else:
        flat = hw.memory.energy
        classes = dict.fromkeys(DRAM_CLASSES, 0.0)
        classes["read"] = BITS_PER_BYTE * memory.bytes_read * flat.read_pj_per_bit / PJ_PER_J
        classes["write"] = BITS_PER_BYTE * memory.bytes_written * flat.write_pj_per_bit / PJ_PER_J
        classes["background_active"] = flat.background_power_w * time_ps / PS_PER_S
    return EnergyBreakdown(
        dram_static_j=classes["background_active"] + classes["background_precharged"],
        dram_j=sum(classes[c] for c in DRAM_COMMAND_CLASSES),
        buffer_j=_buffer_pj(hw, buffers) / PJ_PER_J,
        core_j=_core_pj(hw, time_ps, ops, op_dequant) / PJ_PER_J,
        dram_classes_j=classes,
    )


def dram_energy_j(cfg: DramMemoryConfig, time_ps: int, memory: MemoryCounters) -> dict[str, float]:
    """Joules per command class from the channels' command counts (DRAMsim3-style per-command energy)."""
    e = cfg.energy
    bits_moved = (memory.read_bursts + memory.write_bursts) * cfg.burst_bytes * BITS_PER_BYTE
    channel_ps = cfg.channels * time_ps
    precharged_ps = min(memory.precharged_ps, channel_ps)
    pj = {
        "activate": memory.acts * e.act_pj,
        "read": memory.read_bursts * e.read_pj_per_burst,
        "write": memory.write_bursts * e.write_pj_per_burst,
        "io": bits_moved * e.io_pj_per_bit,
        "refresh": memory.refreshes * e.refresh_pj + memory.bank_refreshes * e.refresh_pb_pj,
    }
    classes = {name: value / PJ_PER_J for name, value in pj.items()}
    # mW x ps = 1e-15 J
    classes["background_active"] = e.active_standby_mw / MW_PER_W * (channel_ps - precharged_ps) / PS_PER_S
    classes["background_precharged"] = e.precharge_standby_mw / MW_PER_W * precharged_ps / PS_PER_S
    return classes


def _leakage_pj(hw: HardwareConfig, time_ps: float) -> float:
    """The PE array's leakage over `time_ps` (charged for the whole time of every run)."""
    pe = hw.energy.pe[hw.pe.energy_class]
    return pe.leakage_pj_per_pe_cycle * (hw.array.rows * hw.array.cols) * (time_ps * hw.core_freq_hz / PS_PER_S)


def leakage_power_w(hw: HardwareConfig) -> float:
    return _leakage_pj(hw, PS_PER_S) / PJ_PER_J


def idle_power_w(hw: HardwareConfig) -> float:
    """Power while no step runs (between serving iterations): PE leakage, DRAM precharge standby and
    refresh (the same terms a run charges for its whole time)."""
    core_w = leakage_power_w(hw)
    mem = hw.memory
    if not isinstance(mem, DramMemoryConfig):
        return core_w + mem.energy.background_power_w
    e = mem.energy
    per_interval_pj = e.refresh_pb_pj * mem.banks_per_channel if mem.refresh == "per_bank" else e.refresh_pj
    refresh_w = per_interval_pj / PJ_PER_J / (ns_to_ps(mem.timing.trefi_ns) / PS_PER_S)
    return core_w + mem.channels * (e.precharge_standby_mw / MW_PER_W + refresh_w)


def _core_pj(hw: HardwareConfig, time_ps: int, ops: list[OpCounters], op_dequant: list[str]) -> float:
    table = hw.energy
    pe = table.pe[hw.pe.energy_class]
    reduce_pj_per_add = (table.reduce_fp_pj_per_add if hw.quant.activation_bits >= 16
                         else table.reduce_int_pj_per_add)
    core_pj = _leakage_pj(hw, time_ps)
    for counters, placement in zip(ops, op_dequant, strict=True):
        core_pj += pe.dynamic_pj_per_pe_cycle * counters.active_pe_cycles
        # a per-output rescale does the same multiply-adds as a per-group one
        per_op = (table.dequant_per_weight_pj_per_op if placement == "per_weight"
                  else table.dequant_per_group_pj_per_op)
        core_pj += per_op * counters.dequant_ops
        core_pj += table.vector_pj_per_element * counters.vector_elements
        core_pj += reduce_pj_per_add * counters.reduce_ops
    return core_pj


def _buffer_pj(hw: HardwareConfig, buffers: dict[str, BufferCounters]) -> float:
    buffer_pj = 0.0
    for name, counters in buffers.items():
        sram = hw.energy.sram[name]  # type: ignore[index]
        buffer_pj += BITS_PER_BYTE * (counters.bytes_read * sram.read_pj_per_bit
                                      + counters.bytes_written * sram.write_pj_per_bit)
    return buffer_pj
