"""Size ceiling: estimate the work of a simulation from its shapes before running it, and refuse in one
line what would take longer than a stated bound (or exhaust memory; both grow with the same counts).

The estimate counts work units: GEMM output tiles of the PE array (times K chunks), attention tiles, and
DRAM interleave chunks moved. It is a closed form over the model shape, deliberately simple: it only has
to be right within a small factor to tell "minutes" from "days". Pure: no SimPy, no hardware/ imports.
"""

from __future__ import annotations

from dataclasses import dataclass

from mixpe_sim.config.models import DramMemoryConfig, HardwareConfig
from mixpe_sim.errors import WorkloadError
from mixpe_sim.units import ceil_div
from mixpe_sim.workload.models import ModelSpec

# K is streamed through the array in chunks of about this many elements per tile (the tiler's kt for the
# shipped buffer sizes is 128..4096; the smaller figure over-counts, the safe side).
K_CHUNK = 512
# Work units the simulator gets through per second of wall time on one core (measured on the shipped
# presets with `--exact`, 2 shared cores, 2026; docs/sweeps.md "Size ceiling").
UNITS_PER_S = 250_000
# Fixed cost of one op of one block (scheduling, vector work, bookkeeping), in units: measured, small models
OP_UNITS = 64
OPS_PER_BLOCK = 16
# DRAM interleave chunks cost about a third of a tile each (measured on hbm3 and ddr4-3200)
DRAM_CHUNKS_PER_UNIT = 3
# Default bound: one hour of wall time. `--max-work N` (units) raises or lowers it.
DEFAULT_MAX_WORK = 3600 * UNITS_PER_S
# Banks the DRAM model keeps state for (channels x banks); real parts have at most a few thousand.
MAX_BANKS = 2**20
# Blocks and decode steps default mode simulates (runs/llm.py: 2 prefix blocks + 3 per precision
# class, at most two classes; DEFAULT_DECODE_SAMPLES sampled decode steps).
DEFAULT_MODE_BLOCKS = 8
DEFAULT_MODE_DECODE_STEPS = 6


@dataclass(frozen=True)
class WorkEstimate:
    units: int
    what: str  # the shape the estimate is for, for the message

    @property
    def wall_s(self) -> float:
        return self.units / UNITS_PER_S


def _gemm_units(m: int, n: int, k: int, rows: int, cols: int) -> int:
    return ceil_div(m, rows) * ceil_div(n, cols) * ceil_div(k, K_CHUNK)


def _dram_units(hw: HardwareConfig, nbytes: int) -> int:
    memory = hw.memory
    if isinstance(memory, DramMemoryConfig):
        return ceil_div(nbytes, memory.interleave_bytes * DRAM_CHUNKS_PER_UNIT)
    return 0


def gemm_work(hw: HardwareConfig, m: int, n: int, k: int) -> WorkEstimate:
    units = _gemm_units(m, n, k, hw.array.rows, hw.array.cols)
    moved = m * k * hw.quant.activation_bits // 8 + k * n * hw.quant.weight_bits // 8 + m * n * 2
    return WorkEstimate(units + _dram_units(hw, moved), f"GEMM {m}x{n}x{k}")


def _block_units(hw: HardwareConfig, model: ModelSpec, batch: int, tokens: int, context: int) -> int:
    rows, cols = hw.array.rows, hw.array.cols
    m = batch * tokens
    h, inter = model.hidden, model.intermediate
    ffn = [(h, 2 * inter), (inter, h)] if model.gated_mlp else [(h, inter), (inter, h)]
    linears = [(h, model.q_dim + 2 * model.kv_dim), (model.q_dim, h), *ffn]
    units = sum(_gemm_units(m, n, k, rows, cols) for k, n in linears)
    per_head = _gemm_units(tokens, context, model.head_dim, rows, cols) + \
        _gemm_units(tokens, model.head_dim, context, rows, cols)
    units += batch * model.heads * per_head
    weight_bytes = sum(k * n for k, n in linears) * hw.quant.weight_bits // 8
    kv_bytes = 2 * batch * context * model.kv_dim * 2
    return units + _dram_units(hw, weight_bytes + kv_bytes) + OP_UNITS * OPS_PER_BLOCK


def request_work(hw: HardwareConfig, model: ModelSpec, batch: int, prompt: int, gen: int,
                 exact: bool) -> WorkEstimate:
    """Prefill at `prompt` plus the decode steps simulated (all with exact, a sample without)."""
    blocks = model.layers if exact else min(model.layers, DEFAULT_MODE_BLOCKS)
    steps = gen - 1 if exact else min(gen - 1, DEFAULT_MODE_DECODE_STEPS)
    last = prompt + gen - 1
    units = blocks * (_block_units(hw, model, batch, prompt, prompt) + steps * _block_units(hw, model, batch, 1, last))
    units += _gemm_units(batch, model.vocab or 1, model.hidden, hw.array.rows, hw.array.cols) * (1 + steps)
    return WorkEstimate(units, f"batch {batch}, prompt {prompt}, gen {gen}")


def step_work(hw: HardwareConfig, model: ModelSpec, batch: int, tokens: int, context: int,
              exact: bool) -> WorkEstimate:
    blocks = model.layers if exact else min(model.layers, DEFAULT_MODE_BLOCKS)
    units = blocks * _block_units(hw, model, batch, tokens, context)
    return WorkEstimate(units, f"batch {batch}, {tokens} new tokens at context {context}")


def check_work(hw: HardwareConfig, estimate: WorkEstimate, max_work: int | None, option: str) -> None:
    """Refuse, in one line with the estimate and the limit, what exceeds the bound or the DRAM state limit."""
    memory = hw.memory
    if isinstance(memory, DramMemoryConfig) and memory.channels * memory.banks_per_channel > MAX_BANKS:
        raise WorkloadError(f"memory.channels x memory.bank_groups x memory.banks_per_group = "
                            f"{memory.channels * memory.banks_per_channel:,} banks; the DRAM model keeps state "
                            f"per bank and allows at most {MAX_BANKS:,}")
    limit = DEFAULT_MAX_WORK if max_work is None else max_work
    if estimate.units > limit:
        raise WorkloadError(f"{estimate.what}: estimated {estimate.units:,} work units (about "
                            f"{_duration(estimate.wall_s)} of simulation), over the limit of {limit:,} "
                            f"(about {_duration(limit / UNITS_PER_S)}); pass {option} N to raise it")


def _duration(seconds: float) -> str:
    for unit, scale in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds:.3g} s"
