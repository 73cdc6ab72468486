"""Attention as accelerators run it: causal masking, attention over a prefix, GQA traffic, fused
(FlashAttention-style) attention and its DRAM bytes, all against closed forms."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixpe_sim.engine.simulator import simulate
from mixpe_sim.errors import ConfigError
from mixpe_sim.runs.llm import Workload, run_step
from mixpe_sim.workload.compile import compile_step
from mixpe_sim.workload.flash import FlashRegions, FlashShape, FlashTiling, lower_fused_attention
from mixpe_sim.workload.gemm import GemmSpec
from mixpe_sim.workload.graph import forward_graph
from mixpe_sim.workload.lowering import ProgramBuilder
from mixpe_sim.workload.models import op_base_name, parse_model
from mixpe_sim.workload.program import NO_OP, Program, TileStep
from mixpe_sim.workload.shapes import CausalMask, SequenceShape, StepShape
from mixpe_sim.workload.tiling import Tiling
from tests.conftest import DATA, hw_with

TINY = str(DATA / "tiny-llama.json")  # hidden 512, 8 query heads, 2 KV heads (group 4), head_dim 64
BYTES = 2  # 16-bit activations and KV cache


def tiny(**changes: int):
    data = json.loads(Path(TINY).read_text())
    data.update(changes)
    return parse_model(data, name="tiny", source="test")


def shape_of(*sequences: tuple[int, int]) -> StepShape:
    return StepShape(tuple(SequenceShape(new, before) for new, before in sequences), 16, 16, False)


def ops_named(program: Program, base: str) -> list[int]:
    return [i for i, op in enumerate(program.ops) if op_base_name(op.name) == base]


def tile_macs(program: Program, op: int) -> int:
    return sum(s.mt * s.nt * s.kt for s in program.steps if isinstance(s, TileStep) and s.op == op)


def visible(new: int, before: int) -> int:
    """Query-key pairs inside the causal mask of one sequence and head."""
    return new * before + new * (new + 1) // 2


# ---- causal masking, per tile ------------------------------------------------------------------

@pytest.mark.parametrize(("prompt", "rows", "cols"), [(64, 16, 16), (64, 16, 64), (96, 32, 48), (128, 64, 32)])
@pytest.mark.parametrize("dim", ["n", "k"])
def test_causal_tiles_compute_the_triangle_plus_the_cut_diagonal_tiles(prompt: int, rows: int, cols: int,
                                                                       dim: str) -> None:
    """A row tile of T tokens computes, for each of its rows, up to the key its last row sees, so
    per head the array does d * S * (S + T) / 2 products (S a multiple of T) against the exact
    d * S * (S + 1) / 2 of the triangle; the op's analytic MACs are the exact triangle."""
    d, heads = 64, 3
    if dim == "n":  # QK^T: keys along N
        spec = GemmSpec("qk", prompt, prompt, d, 16, 16, 16, instances=heads)
        tiling = Tiling(rows, cols, d, "mnk", False, False, 0.0, 0, 0.0)
    else:  # PV: keys along K
        spec = GemmSpec("pv", prompt, d, prompt, 16, 16, 16, instances=heads)
        tiling = Tiling(rows, d, cols, "mnk", False, False, 0.0, 0, 0.0)
    b = ProgramBuilder()
    op = b.add_gemm(spec, tiling, "none", b.allocate(spec.weight_bytes), b.allocate(spec.activation_bytes),
                    b.allocate(spec.output_bytes), mask=CausalMask(1, 0, dim), group="attention")
    program = b.build()
    assert tile_macs(program, op) == heads * d * prompt * (prompt + rows) // 2
    assert program.ops[op].macs == heads * d * prompt * (prompt + 1) // 2
    assert program.ops[op].group == "attention"


def test_causal_mask_visible_products_closed_form() -> None:
    for group, before, rows in [(1, 0, 7), (4, 0, 12), (4, 10, 13), (8, 100, 64)]:
        mask = CausalMask(group, before, "n")
        assert mask.visible_products(rows) == sum(mask.visible_keys(r) for r in range(rows))


@pytest.mark.parametrize("prompt", [32, 100])
def test_prefill_step_macs_are_linear_plus_causal_attention(prompt: int) -> None:
    model = tiny()
    program = compile_step(model, hw_with(), shape_of((prompt, 0)), layers=[0])
    d, h = model.head_dim, model.heads
    for base in ("qk", "pv"):
        (op,) = ops_named(program, base)
        assert program.ops[op].macs == h * d * visible(prompt, 0)
        # whole rows of diagonal tiles (row tiles of at most 128 tokens): < 64 extra products per row
        assert h * d * visible(prompt, 0) <= tile_macs(program, op) <= h * d * (visible(prompt, 0) + prompt * 64)


# ---- attention over a prefix and batches of mixed sequences --------------------------------------

@pytest.mark.parametrize(("chunk", "before"), [(16, 48), (1, 99), (33, 7)])
def test_chunk_over_prefix_attends_to_prefix_and_causally_to_itself(chunk: int, before: int) -> None:
    model = tiny()
    program = compile_step(model, hw_with(), shape_of((chunk, before)), layers=[0])
    d, h = model.head_dim, model.heads
    (qk,) = ops_named(program, "qk")
    (pv,) = ops_named(program, "pv")
    assert program.ops[qk].macs == program.ops[pv].macs == h * d * visible(chunk, before)
    (softmax,) = ops_named(program, "softmax")
    assert program.ops[softmax].elements == h * visible(chunk, before)


def test_mixed_batch_runs_linears_on_all_tokens_and_attention_per_sequence() -> None:
    model = tiny()
    sequences = [(24, 40), (1, 63), (1, 63), (8, 0)]
    shape = shape_of(*sequences)
    graph = forward_graph(model, shape, layers=[0])
    program = compile_step(model, hw_with(), shape, layers=[0])
    tokens = sum(new for new, _ in sequences)
    assert graph.nodes["L0.qkv_proj"]["op"].m == tokens
    d, h = model.head_dim, model.heads
    qk_macs = sum(op.macs for op in program.ops if op_base_name(op.name).startswith("qk["))
    assert qk_macs == h * d * sum(visible(n, b) for n, b in sequences)
    names = sorted(op.name for op in program.ops if op_base_name(op.name).startswith("qk["))
    assert names == ["L0.qk[1+63]", "L0.qk[24+40]", "L0.qk[8+0]"]
    assert graph.nodes["lm_head"]["op"].m == len(sequences)


@settings(max_examples=6, deadline=None)
@given(st.permutations([(24, 40), (1, 300), (1, 63), (1, 63), (8, 0), (1, 7)]))
def test_a_step_does_not_depend_on_the_order_of_its_sequences(sequences: list[tuple[int, int]]) -> None:
    """The compiler runs attention longest first whatever order the scheduler listed the sequences in."""
    model, hw = tiny(), hw_with()
    listed, reference = shape_of(*sequences), shape_of(*sorted(sequences))
    groups = listed.attention_groups()
    work = [new * (2 * before + new + 1) for new, before, _ in groups]
    assert work == sorted(work, reverse=True)
    assert groups == reference.attention_groups()
    assert simulate(hw, compile_step(model, hw, listed)).time_ps == \
        simulate(hw, compile_step(model, hw, reference)).time_ps


def test_uniform_constructor_matches_explicit_sequences() -> None:
    assert StepShape.uniform("decode", 3, 1, 50, 16, 16, False) == shape_of((1, 49), (1, 49), (1, 49))
    assert StepShape.uniform("prefill", 2, 40, 40, 16, 16, False) == shape_of((40, 0), (40, 0))


def test_chunk_that_does_not_finish_its_prompt_emits_no_logits() -> None:
    shape = StepShape((SequenceShape(16, 0, emits_token=False),), 16, 16, False)
    graph = forward_graph(tiny(), shape, layers=[0])
    assert "lm_head" not in graph


# ---- GQA / MQA: K and V read once per KV head ------------------------------------------------------

@pytest.mark.parametrize("kv_heads", [8, 2, 1])
def test_decode_reads_k_and_v_once_per_kv_head(kv_heads: int) -> None:
    model = tiny(num_key_value_heads=kv_heads)
    context, batch = 200, 2
    program = compile_step(model, hw_with(), StepShape.uniform("decode", batch, 1, context, 16, 16, False),
                           layers=[0])
    for base in ("qk", "pv"):
        (op,) = ops_named(program, base)
        weight_bytes = sum(program.tokens[t].nbytes for t in {s.weight_token for s in program.steps
                                                              if isinstance(s, TileStep) and s.op == op})
        assert weight_bytes == batch * kv_heads * context * model.head_dim * BYTES


# ---- fused attention ---------------------------------------------------------------------------

def fused_program(shape: StepShape, **overrides: object) -> Program:
    return compile_step(tiny(), hw_with(attention="fused", **overrides), shape, layers=[0])


def test_fused_decode_moves_exactly_q_k_v_and_o() -> None:
    model, context, batch = tiny(), 300, 2
    program = fused_program(StepShape.uniform("decode", batch, 1, context, 16, 16, False))
    (op,) = [i for i, o in enumerate(program.ops) if op_base_name(o.name) in ("attn", "attn_split")]
    q = o = batch * model.heads * model.head_dim * BYTES
    k = v = batch * model.kv_heads * context * model.head_dim * BYTES
    assert program.dram_bytes_per_op()[op] == q + k + v + o
    assert not ops_named(program, "qk") and not ops_named(program, "softmax")
    assert program.ops[op].macs == 2 * model.heads * model.head_dim * context * batch


@pytest.mark.parametrize(("chunk", "before"), [(64, 0), (40, 100)])
def test_fused_prefill_reads_k_and_v_once_per_query_block(chunk: int, before: int) -> None:
    """Q and O cross once; K and V once per query block, up to the last key the block sees."""
    model = tiny()
    program = fused_program(shape_of((chunk, before)))
    (op,) = ops_named(program, "attn")
    group = model.heads // model.kv_heads
    steps = [s for s in program.steps if isinstance(s, TileStep) and s.op == op]
    qk_rows = {s.activation_token: s.mt for s in steps if s.first_k and s.last_k and s.nt != model.head_dim}
    br = max(qk_rows.values())
    kv_keys = 0
    for row0 in range(0, chunk * group, br):
        last_row = min(row0 + br, chunk * group) - 1
        kv_keys += before + last_row // group + 1
    q = o = chunk * model.q_dim * BYTES
    kv = 2 * model.kv_heads * kv_keys * model.head_dim * BYTES
    assert program.dram_bytes_per_op()[op] == q + kv + o
    assert program.ops[op].macs == 2 * model.heads * model.head_dim * visible(chunk, before)


def test_fused_attention_is_faster_and_lighter_than_unfused_for_a_long_prompt() -> None:
    wl = Workload(model=TINY, prompt=256)
    fused = run_step(hw_with(attention="fused"), tiny(), wl, "prefill", 256, exact=True)
    unfused = run_step(hw_with(), tiny(), wl, "prefill", 256, exact=True)
    assert fused["dram_bytes_read"] < unfused["dram_bytes_read"]
    assert fused["step_s"] < unfused["step_s"]
    groups = fused["by_group"]
    assert set(groups) == {"linear", "attention", "vector"}
    assert groups["attention"]["dram_bytes"] < unfused["by_group"]["attention"]["dram_bytes"]
    assert {row["op"]: row["group"] for row in fused["per_op"]}.items() >= {
        "attn": "attention", "attn_softmax": "attention", "qkv_proj": "linear", "attn_norm": "vector"}.items()


# 256-wide heads: one 32-row query block with its O accumulator and 32 scores needs 18 KiB of output
# buffer per tile, more than the linear layers' smallest tile (8 KiB)
WIDE_HEADS = {"num_attention_heads": 2, "num_key_value_heads": 2}
SMALL_OUTPUT = {"buffers.output.capacity_bytes": 16384}


def test_fused_with_buffers_too_small_for_one_block_is_a_config_error() -> None:
    hw = hw_with(attention="fused", **SMALL_OUTPUT)
    compile_step(tiny(**WIDE_HEADS), hw_with(**SMALL_OUTPUT), shape_of((64, 0)), layers=[0])  # unfused fits
    with pytest.raises(ConfigError, match=r"buffers\.output\.capacity_bytes: too small for one K/V block of fused"):
        compile_step(tiny(**WIDE_HEADS), hw, shape_of((64, 0)), layers=[0])


def test_cli_fused_too_small_exits_2_with_one_line(tmp_path: Path) -> None:
    data = json.loads(Path(TINY).read_text())
    data.update(WIDE_HEADS)
    model = tmp_path / "wide.json"
    model.write_text(json.dumps(data))
    cmd = [sys.executable, "-m", "mixpe_sim", "step", "--model", str(model), "--phase", "prefill", "--context",
           "64", "--set", "attention=fused", "--set", "buffers.output.capacity_bytes=16384"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).parent.parent)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "buffers.output.capacity_bytes" in done.stderr


def test_long_decode_without_k_split_maps_keys_onto_the_array_rows_and_says_so() -> None:
    """FlashDecoding-style: with one query row per KV head and no K-split, putting the keys on the
    array rows is faster; the op is named attn_split and still moves exactly Q + K + V + O."""
    model, context = tiny(num_key_value_heads=8), 2048
    hw = hw_with(attention="fused", **{"array.k_split_small_m": False})
    program = compile_step(model, hw, StepShape.uniform("decode", 1, 1, context, 16, 16, False), layers=[0])
    (op,) = ops_named(program, "attn_split")
    q = o = model.q_dim * BYTES
    assert program.dram_bytes_per_op()[op] == q + 2 * model.kv_heads * context * model.head_dim * BYTES + o
    result = run_step(hw, model, Workload(model=TINY, prompt=context - 1, gen=2), "decode", context, exact=True)
    assert any(row["op"] == "attn_split" and row["group"] == "attention" for row in result["per_op"])
    assert result["mode"]["attention"] == "fused"


@settings(max_examples=40, deadline=None)
@given(tokens=st.integers(1, 40), group=st.sampled_from([1, 2, 4]), before=st.integers(0, 50),
       br=st.integers(1, 64), bc=st.integers(1, 64), instances=st.integers(1, 3), kv_split=st.booleans())
def test_fused_lowering_conserves_bytes_and_work(tokens: int, group: int, before: int, br: int, bc: int,
                                                 instances: int, kv_split: bool) -> None:
    """Any blocking: Q and O cross once, K and V once per query block up to its last visible key,
    the scores never; the array covers every visible product; one O store per query block."""
    d = 8
    if kv_split:
        tokens, br = 1, group
    shape = FlashShape(m=tokens * group, ctx=before + tokens, d=d, instances=instances,
                       mask=CausalMask(group, before, "n"), kv_bits=16, activation_bits=16)
    b = ProgramBuilder()
    q_bytes, kv_bytes = shape.q_block_bytes(shape.m) * instances, shape.kv_block_bytes(shape.ctx) * instances
    regions = FlashRegions(b.allocate(q_bytes), b.allocate(kv_bytes), b.allocate(kv_bytes), b.allocate(q_bytes),
                           NO_OP, NO_OP)
    op, vec = lower_fused_attention(b, "L0.qk", 0, shape, FlashTiling(br, bc, kv_split, 0.0, 0), regions)
    program = b.build()
    seen_keys = sum(before + (min(r + br, shape.m) - 1) // group + 1 for r in range(0, shape.m, br))
    moved = program.dram_bytes_per_op()
    assert moved[op] == 2 * q_bytes + 2 * instances * shape.kv_block_bytes(1) * seen_keys
    assert moved[vec] == 0
    assert tile_macs(program, op) >= shape.macs
    stores = [s for s in program.steps if isinstance(s, TileStep) and s.op == op and s.out_bytes]
    assert len(stores) == instances * len(range(0, shape.m, br))


@pytest.mark.parametrize("attention", ["unfused", "fused"])
def test_buffer_reads_are_each_tiles_own_operand_bytes(attention: str) -> None:
    """Tiles of one op and shape can carry different operands (fused attention: QK reads Q from the
    activation buffer, PV takes the on-chip probabilities): each tile is priced with its own bytes."""
    from mixpe_sim.arch.pe import ArraySpec, GemmPrecision, tile_cost

    hw = hw_with(attention=attention)
    program = compile_step(tiny(), hw, shape_of((24, 40), (1, 63)), layers=[0])
    raw = simulate(hw, program)
    array, tokens = ArraySpec.from_hw(hw), program.tokens
    weight = activation = 0
    for s in program.tile_steps():
        op = program.ops[s.op]
        w, a = tokens[s.weight_token], tokens[s.activation_token]
        cost = tile_cost(array, GemmPrecision(op.weight_bits, op.activation_bits, op.dequant, op.group_size),
                         s.mt, s.nt, s.kt, w.nbytes, a.nbytes, s.last_k)
        weight += w.payload_bytes * cost.weight_passes
        weight += w.scale_bytes * cost.weight_passes * (not hw.buffers.scale)  # no scale SRAM: same buffer
        activation += a.payload_bytes * cost.activation_passes
    activation += sum(tokens[v.in_token].payload_bytes for v in program.vector_steps)  # the vector unit's
    assert raw.buffers["weight"].bytes_read == weight
    assert raw.buffers["activation"].bytes_read == activation


@pytest.mark.parametrize("attention", ["unfused", "fused"])
def test_mixed_batch_simulates_and_dram_sees_exactly_the_program_traffic(attention: str) -> None:
    """A serving-style iteration (a prefill chunk over a prefix plus decodes) runs to completion;
    on-chip tokens and results never reach DRAM."""
    hw = hw_with(attention=attention)
    program = compile_step(tiny(), hw, shape_of((24, 40), (1, 63), (1, 30)), layers=[0, 1])
    raw = simulate(hw, program)
    loaded = sum(t.nbytes for t in program.tokens if t.buffer != "on_chip")
    stored = sum(s.out_bytes for s in program.steps if not isinstance(s, TileStep) or s.last_k)
    assert raw.memory.bytes_read == loaded
    assert raw.memory.bytes_written == stored
    assert any(t.buffer == "on_chip" for t in program.tokens) == (attention == "fused")
