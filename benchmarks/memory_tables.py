"""The measured tables of docs/memory-validation.md and docs/memory.md. Not a test: run by hand.

    python benchmarks/memory_tables.py
"""

from __future__ import annotations

import random

from mixpe_sim.config import load_hardware
from mixpe_sim.config.models import DramMemoryConfig
from mixpe_sim.energy import dram_energy_j
from mixpe_sim.hardware.dram.memory import DramMemory
from mixpe_sim.runs.llm import Workload, run_step
from mixpe_sim.units import PS_PER_S
from mixpe_sim.workload.models import load_model

PRESETS = ["ddr4-3200", "ddr5-4800", "lpddr5-6400", "gddr6", "hbm2e", "hbm3"]


def dram(name: str, **overrides: object) -> DramMemoryConfig:
    cfg = load_hardware("mixpe-w4a16", name, [(f"memory.{k}", v) for k, v in overrides.items()]).memory
    assert isinstance(cfg, DramMemoryConfig)
    return cfg


def stream(cfg: DramMemoryConfig, total: int = 32 << 20, size: int = 64 * 1024) -> tuple[float, float, DramMemory, int]:
    memory = DramMemory(cfg)
    slots = [0] * 4
    for i, addr in enumerate(range(0, total, size)):
        slots[i % 4] = memory.access(slots[i % 4], addr, size, False)
    end = max(slots)
    memory.finish(end)
    c = memory.counters
    return total / (end / PS_PER_S) / cfg.peak_bw_bytes_per_s, c.row_hits / (c.row_hits + c.row_misses), memory, end


def scattered(cfg: DramMemoryConfig, count: int = 4000) -> float:
    size = cfg.channels * cfg.interleave_bytes
    memory = DramMemory(cfg)
    rng = random.Random(11)
    slots = [0] * 64
    for i in range(count):
        slots[i % 64] = memory.access(slots[i % 64], rng.randrange(0, 1 << 34) // size * size, size, False)
    return count * size / (max(slots) / PS_PER_S) / cfg.peak_bw_bytes_per_s


def main() -> None:
    print("| preset | organisation | peak GB/s | capacity GiB | sequential | one bank group (tCCD_L) "
          "| all-bank refresh | random stripe | stream pJ/bit |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in PRESETS:
        cfg = dram(name)
        seq, _, memory, end = stream(cfg)
        classes = dram_energy_j(cfg, end, memory.counters)
        per_bit = sum(classes.values()) / ((32 << 20) * 8) * 1e12
        same_group = stream(dram(name, mapping="row_bank_column"))[0]
        all_bank = stream(dram(name, refresh="all_bank"))[0] if cfg.refresh == "per_bank" else seq
        org = (f"{cfg.channels} x {cfg.bus_width_bits} bit, {cfg.bank_groups} BG x {cfg.banks_per_group}, "
               f"{cfg.row_bytes // 1024} KiB rows")
        print(f"| `{name}` | {org} | {cfg.peak_bw_bytes_per_s / 1e9:.1f} | {cfg.capacity_bytes / 2**30:.0f} | "
              f"{seq:.3f} ({cfg.refresh.replace('_', '-')}) | {same_group:.3f} | {all_bank:.3f} | "
              f"{scattered(cfg):.3f} | {per_bit:.2f} |")
    print()
    model = load_model("llama-2-7b")
    print("| memory | hw | step ms | DRAM util | bound | lockstep vs independent |")
    print("|---|---|---|---|---|---|")
    for hw_name in ("dc-mixpe-w4a16", "mixpe-w4a16"):
        for name in PRESETS:
            hw = load_hardware(hw_name, name, [])
            wl = Workload(prompt=2047, gen=2)
            r = run_step(hw, model, wl, "decode", 2048, exact=False)
            ind = run_step(load_hardware(hw_name, name, [("memory.channel_model", "independent")]), model, wl,
                           "decode", 2048, exact=False)
            print(f"| `{name}` | {hw_name} | {r['step_s'] * 1e3:.2f} | {r['dram_bw_utilization']:.3f} | "
                  f"{r['bottleneck']['decode']['resource']} | {r['step_s'] / ind['step_s'] - 1:+.2%} |")


if __name__ == "__main__":
    main()
