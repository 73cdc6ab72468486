"""Fused attention (FlashAttention-style): tile choice and lowering of one attention op.

Per instance (sequence x KV head) and query block of Br rows: load the Q block once; for each K/V
block of Bc keys the causal mask leaves visible, S = Q K_j^T on the array (kept on chip), online
softmax on the vector unit (running max and sum, rescale of the O accumulator), O += P V_j on the
array with O held in the output buffer; after the last block O is normalised and written once.
Only Q, K, V and O cross DRAM; K and V are read once per query block (once in all when one query
block covers the instance, e.g. decode). docs/modelling.md "Attention" states the assumptions.

Decode (one new token, m = query heads per KV head) can instead map the keys onto the array rows
(S^T = K q^T, O^T = V^T P^T): FlashDecoding-style, the KV sequence is spread over the array rather
than one query row using one array row. The choice is by estimated time; the op name says which.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from mixpe_sim.arch.pe import GemmPrecision, tile_cost
from mixpe_sim.errors import ConfigError
from mixpe_sim.units import BITS_PER_BYTE, ceil_div
from mixpe_sim.workload.lowering import ProgramBuilder, Region
from mixpe_sim.workload.program import OpInfo, TileStep, TokenBuffer, VectorStep
from mixpe_sim.workload.shapes import CausalMask
from mixpe_sim.workload.tiling import TileBudget, candidate_sizes

# Vector-unit operations of online softmax (FlashAttention-2, Dao 2023, Algorithm 1), assumed one
# lane-cycle each: per score: compare into the running max, subtract, exp, add into the running sum.
ONLINE_SOFTMAX_OPS_PER_SCORE = 4
# per query row and K/V block: new max, exp(old max - new max), rescale the running sum
RESCALE_OPS_PER_ROW = 3
# per O-accumulator element and K/V block after the first: O *= exp(old max - new max)
RESCALE_OPS_PER_OUTPUT = 1
# per O element once at the end: O /= running sum
NORMALIZE_OPS_PER_OUTPUT = 1
# Larger query blocks re-read K and V fewer times but waste more of the diagonal and pay more
# fill/drain; within this fraction of the fastest estimate the blocking with the least DRAM traffic
# wins: the estimate is not exact to a few percent, while each DRAM byte costs energy for sure.
TIME_SLACK_FOR_TRAFFIC = 0.05
# smallest K/V block tried: one DRAM burst-friendly block of keys
MIN_KEY_BLOCK = 16
# The array computes block j+1's scores while the vector unit runs block j's online softmax
# (software pipelining, as FlashAttention-3's ping-pong schedule): two score blocks live on chip.
SCORE_BLOCKS_IN_FLIGHT = 2


@dataclass(frozen=True, slots=True)
class FlashShape:
    """One fused attention op: `instances` independent (sequence, KV head) problems."""

    m: int  # query rows per instance (query heads of the group x new tokens, token-major)
    ctx: int  # keys per instance
    d: int  # head dimension
    instances: int
    mask: CausalMask
    kv_bits: int
    activation_bits: int

    def q_block_bytes(self, rows: int) -> int:
        return ceil_div(rows * self.d * self.activation_bits, BITS_PER_BYTE)

    def kv_block_bytes(self, keys: int) -> int:
        return ceil_div(keys * self.d * self.kv_bits, BITS_PER_BYTE)

    @property
    def macs(self) -> int:
        """QK^T plus PV products inside the causal mask."""
        return 2 * self.mask.visible_products(self.m) * self.d * self.instances


@dataclass(frozen=True, slots=True)
class FlashTiling:
    br: int  # query rows per block (kv_split: keys per block on the array rows)
    bc: int  # keys per K/V block
    kv_split: bool  # decode: keys mapped onto the array rows (FlashDecoding-style)
    est_cycles: float
    est_dram_bytes: int


@dataclass(frozen=True, slots=True)
class _Block:
    """One K/V block of one query block."""

    rows: int  # query rows of the block
    keys: int  # keys of the K/V block (the last visible block may be cut by the mask)
    first: bool
    last: bool


def query_blocks(shape: FlashShape, br: int) -> list[tuple[int, int]]:
    """(first row, rows) of each query block."""
    return [(r, min(br, shape.m - r)) for r in range(0, shape.m, br)]


def kv_blocks(shape: FlashShape, row0: int, rows: int, bc: int) -> list[_Block]:
    """K/V blocks a query block visits: up to the last key its last row sees (causal skip)."""
    visible = min(shape.ctx, shape.mask.visible_keys(row0 + rows - 1))
    starts = range(0, visible, bc)
    last = len(starts) - 1
    return [_Block(rows, min(bc, visible - k0), i == 0, i == last) for i, k0 in enumerate(starts)]


def vector_ops(shape: FlashShape, block: _Block) -> int:
    """Vector-unit operations of one K/V block's online softmax step."""
    ops = block.rows * (block.keys * ONLINE_SOFTMAX_OPS_PER_SCORE + RESCALE_OPS_PER_ROW)
    if not block.first:
        ops += block.rows * shape.d * RESCALE_OPS_PER_OUTPUT
    if block.last:
        ops += block.rows * shape.d * NORMALIZE_OPS_PER_OUTPUT
    return ops


def tile_shapes(shape: FlashShape, block: _Block, kv_split: bool) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(mt, nt, kt) of the QK and the PV tile of one block."""
    if kv_split:
        return (block.keys, block.rows, shape.d), (shape.d, block.rows, block.keys)
    return (block.rows, block.keys, shape.d), (block.rows, shape.d, block.keys)


def _fits(shape: FlashShape, budget: TileBudget, br: int, bc: int, kv_split: bool) -> str:
    """The buffer key that cannot hold this blocking ("" if it fits)."""
    psum = budget.psum_bits
    kv_block = shape.kv_block_bytes(bc)
    q_block = shape.q_block_bytes(br)
    # normal: Q block in the activation buffer, K/V blocks in the weight buffer; kv_split: swapped
    kv_limit = budget.activation.tile_bytes if kv_split else budget.weight.tile_bytes
    q_limit = budget.weight.tile_bytes if kv_split else budget.activation.tile_bytes
    if kv_block > kv_limit:
        return "buffers.activation.capacity_bytes" if kv_split else "buffers.weight.capacity_bytes"
    if q_block > q_limit:
        return "buffers.weight.capacity_bytes" if kv_split else "buffers.activation.capacity_bytes"
    # the O accumulator is held across the K/V loop next to two blocks of scores (the next block's
    # scores are computed while the vector unit works on this block's)
    if ceil_div(br * (SCORE_BLOCKS_IN_FLIGHT * bc + shape.d) * psum, BITS_PER_BYTE) > budget.output.tile_bytes:
        return "buffers.output.capacity_bytes"
    return ""


def estimate(shape: FlashShape, budget: TileBudget, br: int, bc: int, kv_split: bool,
             vector_lanes: int) -> FlashTiling:
    precision = GemmPrecision(shape.kv_bits, shape.activation_bits, "none", 1)
    array_cycles = vector_cycles = 0.0
    traffic = 0
    for row0, rows in query_blocks(shape, br):
        traffic += 2 * shape.q_block_bytes(rows)  # Q in, O out
        for block in kv_blocks(shape, row0, rows, bc):
            traffic += 2 * shape.kv_block_bytes(block.keys)
            qk, pv = tile_shapes(shape, block, kv_split)
            array_cycles += tile_cost(budget.array, precision, *qk, 0, 0, True).busy_cycles
            array_cycles += tile_cost(budget.array, precision, *pv, 0, 0, block.last).busy_cycles
            vector_cycles += ceil_div(vector_ops(shape, block), vector_lanes)
    traffic *= shape.instances
    memory = 0.0 if math.isinf(budget.dram_bytes_per_cycle) else traffic / budget.dram_bytes_per_cycle
    est = max(array_cycles * shape.instances, vector_cycles * shape.instances, memory)
    return FlashTiling(br, bc, kv_split, est, traffic)


@lru_cache(maxsize=1024)
def choose_flash_tiling(shape: FlashShape, budget: TileBudget, vector_lanes: int) -> FlashTiling:
    """Among the blockings that fit and are within TIME_SLACK_FOR_TRAFFIC of the fastest estimate, the
    one with the least DRAM traffic (then the fastest, then the largest blocks)."""
    arr = budget.array
    options: list[tuple[int, int, bool]] = []
    # from array-sized blocks upwards, and halved down to MIN_KEY_BLOCK for buffers too small for those
    row_options = _with_smaller(candidate_sizes(min(shape.m, arr.rows), shape.m))
    key_options = _with_smaller(candidate_sizes(min(shape.ctx, max(MIN_KEY_BLOCK, arr.cols)), shape.ctx))
    options += [(br, bc, False) for br in row_options for bc in key_options]
    if shape.m == shape.mask.group:  # one new token: keys may go onto the array rows
        split_keys = candidate_sizes(min(shape.ctx, max(MIN_KEY_BLOCK, arr.rows)), shape.ctx)
        options += [(shape.m, bc, True) for bc in split_keys]
    fitting: list[FlashTiling] = []
    missing = ""
    for br, bc, kv_split in options:
        why = _fits(shape, budget, br, bc, kv_split)
        if why:
            missing = missing or why
            continue
        fitting.append(estimate(shape, budget, br, bc, kv_split, vector_lanes))
    if not fitting:
        raise ConfigError("hardware", missing, f"too small for one K/V block of fused attention ({shape.d}-wide "
                          f"heads, {key_options[0]} keys, {row_options[0]} query rows); "
                          "allowed: larger buffers, or attention: unfused")
    fastest = min(t.est_cycles for t in fitting)
    near = [t for t in fitting if t.est_cycles <= fastest * (1 + TIME_SLACK_FOR_TRAFFIC)]
    return min(near, key=lambda t: (t.est_dram_bytes, t.est_cycles, -t.br * t.bc))


def _with_smaller(sizes: list[int]) -> list[int]:
    smaller, size = [], sizes[0] // 2
    while size >= MIN_KEY_BLOCK:
        smaller.append(size)
        size //= 2
    return sorted(smaller) + sizes


@dataclass(frozen=True, slots=True)
class FlashRegions:
    """Where the op's tensors live in DRAM and which ops must finish before they are read."""

    q: Region
    k: Region
    v: Region
    o: Region
    q_after_op: int
    kv_after_op: int


def lower_fused_attention(builder: ProgramBuilder, name: str, layer: int, shape: FlashShape,
                          tiling: FlashTiling, regions: FlashRegions) -> tuple[int, int]:
    """Append the fused op (array tiles) and its online softmax (vector steps). Returns both op indices.

    Scores, probabilities and the O accumulator are on-chip tokens and stores (no DRAM traffic). Each
    block's PV tile waits for that block's softmax on the vector unit (docs/modelling.md "Attention").
    """
    base = f"L{layer}." if layer >= 0 else ""
    suffix = name[len(base) + 2:]  # "L0.qk[5+3]" -> "[5+3]"
    label = "attn_split" if tiling.kv_split else "attn"
    op = builder.add_op(OpInfo(
        name=f"{base}{label}{suffix}", kind="gemm", layer=layer, weight_bits=shape.kv_bits,
        activation_bits=shape.activation_bits, output_bits=shape.activation_bits, dequant="none",
        group_size=1, macs=shape.macs, elements=0, instances=shape.instances, group="attention"))
    vec = builder.add_op(OpInfo(
        name=f"{base}{label}_softmax{suffix}", kind="vector", layer=layer, weight_bits=0,
        activation_bits=shape.activation_bits, output_bits=shape.activation_bits, dequant="none",
        group_size=1, macs=0, elements=0, group="attention"))
    q_stride, kv_stride = regions.q.nbytes // shape.instances, regions.k.nbytes // shape.instances
    # Array order QK_0, QK_1, PV_0, QK_2, PV_1, ... over every (query block, K/V block) of the op, so
    # each block's softmax on the vector unit overlaps the next block's scores on the array.
    pending: tuple[_QueryBlock, _Block, int, int] | None = None  # PV waiting for its softmax
    for instance in range(shape.instances):
        for row0, rows in query_blocks(shape, tiling.br):
            query = _open_query_block(builder, shape, tiling, op, regions, instance * q_stride,
                                      instance * kv_stride, row0, rows)
            key0 = 0
            for block in kv_blocks(shape, row0, rows, tiling.bc):
                probs = _lower_scores(builder, shape, tiling, op, vec, regions, query, block, key0)
                if pending is not None:
                    _lower_pv(builder, shape, tiling, op, regions, *pending)
                pending = (query, block, probs, key0)
                key0 += block.keys
    if pending is not None:
        _lower_pv(builder, shape, tiling, op, regions, *pending)
    return op, vec


@dataclass(frozen=True, slots=True)
class _QueryBlock:
    q_token: int
    o_id: int  # the O accumulator
    o_addr: int
    q_bytes: int
    kv_offset: int  # the instance's K and V within their regions


def _open_query_block(builder: ProgramBuilder, shape: FlashShape, tiling: FlashTiling, op: int,
                      regions: FlashRegions, q_offset: int, kv_offset: int, row0: int, rows: int) -> _QueryBlock:
    q_bytes = shape.q_block_bytes(rows)
    q_addr = regions.q.base + q_offset + shape.q_block_bytes(row0)
    q_buffer = "weight" if tiling.kv_split else "activation"  # kv_split: q is the stationary operand
    q_token = builder.new_token(q_buffer, q_addr, q_bytes, regions.q_after_op)
    builder.charge(op, q_bytes)
    return _QueryBlock(q_token, builder.new_output(), regions.o.base + q_offset + shape.q_block_bytes(row0),
                       q_bytes, kv_offset)


def _kv_buffer(tiling: FlashTiling) -> TokenBuffer:
    return "activation" if tiling.kv_split else "weight"


def _lower_scores(builder: ProgramBuilder, shape: FlashShape, tiling: FlashTiling, op: int, vec: int,
                  regions: FlashRegions, query: _QueryBlock, block: _Block, key0: int) -> int:
    """S = Q K_j^T on the array, then the block's online softmax on the vector unit; returns P's token."""
    qk, _ = tile_shapes(shape, block, tiling.kv_split)
    k_token = builder.new_token(_kv_buffer(tiling), regions.k.base + query.kv_offset + shape.kv_block_bytes(key0),
                                shape.kv_block_bytes(block.keys), regions.kv_after_op)
    builder.use(query.q_token)
    builder.use(k_token)
    qk_w, qk_a = (query.q_token, k_token) if tiling.kv_split else (k_token, query.q_token)
    # on chip: the array hands the scores to the vector unit, which hands the probabilities back
    scores = builder.new_token("on_chip", 0, 0, op)
    probs = builder.new_token("on_chip", 0, 0, vec)
    builder.add_tile_step(TileStep(op, *qk, qk_w, qk_a, builder.new_output(), True, True, 0, 0, scores))
    builder.use(scores)
    builder.vector_steps.append(VectorStep(vec, vector_ops(shape, block), 1, scores, 0, 0, probs))
    builder.charge(op, shape.kv_block_bytes(block.keys), stores=1)  # K block in, scores stay on chip
    builder.charge(vec, 0, stores=1)
    return probs


def _lower_pv(builder: ProgramBuilder, shape: FlashShape, tiling: FlashTiling, op: int, regions: FlashRegions,
              query: _QueryBlock, block: _Block, probs: int, key0: int) -> None:
    """O += P V_j into the query block's accumulator; the last block writes O back."""
    _, pv = tile_shapes(shape, block, tiling.kv_split)
    v_token = builder.new_token(_kv_buffer(tiling), regions.v.base + query.kv_offset + shape.kv_block_bytes(key0),
                                shape.kv_block_bytes(block.keys), regions.kv_after_op)
    builder.use(v_token)
    builder.use(probs)
    w_token, a_token = (probs, v_token) if tiling.kv_split else (v_token, probs)
    builder.add_tile_step(TileStep(op, *pv, w_token, a_token, query.o_id, block.first, block.last, query.o_addr,
                                  query.q_bytes if block.last else 0))
    # V block in; the last block writes O back
    builder.charge(op, shape.kv_block_bytes(block.keys) + (query.q_bytes if block.last else 0), int(block.last))
