"""Every shortcut the simulator takes for speed, checked equal to the slow path it replaces."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from mixpe_sim.engine.simulator import simulate
from mixpe_sim.workload.compile import compile_step
from mixpe_sim.workload.models import load_model
from mixpe_sim.workload.program import Program, TileStep
from mixpe_sim.workload.shapes import SequenceShape, StepShape
from tests.conftest import DATA, hw_with

TINY = load_model(str(DATA / "tiny-llama.json"))
CASES = [("mixpe-w4a16", "flat"), ("dc-mixpe-w4a16", "ideal"), ("edge-int8", "lpddr5-6400"), ("bitfusion", "ddr4-3200")]


def programs() -> list[tuple[str, object, Program]]:
    out = []
    for name, memory in CASES:
        hw = hw_with(name, memory)
        for shape in (StepShape.uniform("decode", 2, 1, 300, 16, hw.quant.activation_bits, False),
                      StepShape.uniform("prefill", 1, 160, 160, 16, hw.quant.activation_bits, False),
                      StepShape((SequenceShape(48, 100, False), SequenceShape(1, 250)), 16,
                                hw.quant.activation_bits, False)):
            out.append((f"{name}/{memory}/{len(shape.sequences)}x{shape.tokens}", hw, compile_step(TINY, hw, shape)))
    return out


PROGRAMS = programs()


def walked_dram_bytes_and_stores(program: Program) -> tuple[list[int], list[int]]:
    """The slow way: walk every step; a token's bytes go to the op of the first step that reads it."""
    moved, stores = [0] * len(program.ops), [0] * len(program.ops)
    loaded: set[int] = set()
    for step in program.steps:
        tile = isinstance(step, TileStep)
        reads = (step.weight_token, step.activation_token) if tile else (step.in_token,)  # type: ignore[union-attr]
        for token_id in reads:
            if token_id not in loaded:
                loaded.add(token_id)
                moved[step.op] += program.tokens[token_id].nbytes
        if not tile or step.last_k:  # type: ignore[union-attr]
            moved[step.op] += step.out_bytes
            stores[step.op] += 1
    return moved, stores


@pytest.mark.parametrize(("label", "hw", "program"), PROGRAMS, ids=[p[0] for p in PROGRAMS])
def test_per_op_bytes_and_stores_counted_while_lowering_equal_a_walk_of_the_steps(label, hw, program) -> None:
    moved, stores = walked_dram_bytes_and_stores(program)
    assert program.dram_bytes_per_op() == moved
    assert program.stores_per_op() == stores


@pytest.mark.parametrize(("label", "hw", "program"), PROGRAMS, ids=[p[0] for p in PROGRAMS])
def test_bookkeeping_kept_while_placing_templates_equals_a_walk_of_tokens_and_steps(label, hw, program) -> None:
    """Templates are placed by extending columns: per-buffer load orders, filled bytes and use counts
    must be what walking every token and step gives; the array's steps are the runs' expansion."""
    tokens = list(program.tokens)
    assert [t.token_id for t in tokens] == list(range(len(tokens)))
    for buffer in ("weight", "activation", "on_chip"):
        assert program.load_order(buffer) == tuple(t.token_id for t in tokens if t.buffer == buffer)
        assert program.filled_bytes[buffer] == sum(t.payload_bytes for t in tokens if t.buffer == buffer)
    assert program.scale_bytes == sum(t.scale_bytes for t in tokens)
    uses = [0] * len(tokens)
    for step in program.steps:
        for token_id in ((step.weight_token, step.activation_token) if isinstance(step, TileStep)
                         else (step.in_token,)):
            uses[token_id] += 1
    assert list(program.token_uses) == uses
    tiles = list(program.tile_steps())
    assert sum(len(run.steps) for run in program.tile_runs) == len(tiles)
    assert all(0 <= s.weight_token < len(tokens) and 0 <= s.activation_token < len(tokens) for s in tiles)


@pytest.mark.parametrize(("label", "hw", "program"), PROGRAMS, ids=[p[0] for p in PROGRAMS])
def test_run_ahead_gives_the_same_run_as_one_timeout_per_wait(label, hw, program) -> None:
    fast, slow = asdict(simulate(hw, program)), asdict(simulate(hw, program, run_ahead=False))
    assert fast.pop("events") <= slow.pop("events")
    assert fast == slow


DRAM_PRESETS = ["ddr4-3200", "ddr5-4800", "lpddr5-6400", "gddr6", "hbm2e", "hbm3"]
MAPPINGS = ["row_bank_column_bankgroup", "row_bank_column", "row_column_bank"]


@pytest.mark.parametrize("mapping", MAPPINGS)
@pytest.mark.parametrize("name", DRAM_PRESETS)
def test_closed_form_dram_runs_equal_timing_every_burst_alone(name: str, mapping: str) -> None:
    """Three interleaved streams (one of them writing), idle gaps and refresh, random run lengths; the
    reference also times every row opening's ACTs one by one (no clean or shifted-clean opening)."""
    import random

    from mixpe_sim.hardware.dram.timing import ChannelTiming

    cfg = hw_with("mixpe-w4a16", name, **{"memory.mapping": mapping}).memory
    fast, slow = ChannelTiming(cfg), ChannelTiming(cfg)  # type: ignore[arg-type]
    slow._clean_ok = slow._shifts_clean = False  # the reference times every opening's ACTs one by one
    rng = random.Random(5)
    streams = [rng.randrange(0, 1 << 20) for _ in range(3)]
    now = 0
    for _ in range(1500):
        index = rng.randrange(3)
        bursts = rng.choice([1, 3, 8, 32, 34, 64, 100])
        start = streams[index] if rng.random() < 0.9 else rng.randrange(0, 1 << 22)
        streams[index] = start + bursts
        write = index == 2 and rng.random() < 0.5
        now += rng.choice([0, 0, 0, 1000, 50_000, 2_000_000])
        assert fast.serve(start, bursts, now, write) == slow.serve_by_burst(start, bursts, now, write)
    fast.finish(now)
    slow.finish(now)
    assert fast.stats == slow.stats


@pytest.mark.parametrize("name", ["ddr5-4800", "gddr6", "hbm3"])
def test_lockstep_channels_are_close_to_independent_ones_on_llm_steps(name: str) -> None:
    """Within 2.5 % on the tiny model, whose tiles are a few channel stripes (sub-stripe rounding shows);
    LLaMA-2-7B decode steps agree within 1.1 % (docs/memory-validation.md)."""
    for phase, seq, ctx in (("decode", 1, 300), ("prefill", 128, 128)):
        results = []
        for channel_model in ("lockstep", "independent"):
            hw = hw_with("edge-mixpe-w4a16", name, **{"memory.channel_model": channel_model})
            shape = StepShape.uniform(phase, 1, seq, ctx, 16, hw.quant.activation_bits, False)
            results.append(simulate(hw, compile_step(TINY, hw, shape)))
        lockstep, independent = results
        assert lockstep.time_ps == pytest.approx(independent.time_ps, rel=0.025)
        assert lockstep.memory.bytes_read == independent.memory.bytes_read
        assert lockstep.memory.read_bursts == independent.memory.read_bursts
