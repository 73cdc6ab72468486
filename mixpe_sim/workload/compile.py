"""Lower a forward-step op graph into a Program (pure: no SimPy, no hardware state)."""

from __future__ import annotations

from collections.abc import Sequence

import networkx as nx

from mixpe_sim.collector import collector_paused
from mixpe_sim.config.models import HardwareConfig
from mixpe_sim.units import BITS_PER_BYTE, ceil_div
from mixpe_sim.workload.flash import FlashRegions, FlashShape, choose_flash_tiling, lower_fused_attention
from mixpe_sim.workload.gemm import UNQUANTIZED_BITS, GemmSpec, precision_for, weight_gemm
from mixpe_sim.workload.graph import GemmNode, VectorNode, forward_graph, ordered_nodes
from mixpe_sim.workload.lowering import ProgramBuilder, Region, allocation_alignment_bytes
from mixpe_sim.workload.models import ModelSpec, op_base_name
from mixpe_sim.workload.program import NO_OP, Program
from mixpe_sim.workload.shapes import StepShape
from mixpe_sim.workload.tiling import TileBudget, choose_tiling

# Causal GEMMs compute whole rows of a diagonal tile up to its last row's visible key, so the masked
# products they still compute grow with the tokens per row tile; capping a row tile at this many
# query tokens bounds that waste to < 64 per row and head (docs/modelling.md "Attention").
CAUSAL_ROW_TILE_TOKENS = 128


def causal_row_limit(node: GemmNode) -> int:
    """Largest row tile (rows) for a causal GEMM with several new tokens; 0 = no limit."""
    if node.mask is None or node.m <= node.mask.group:
        return 0
    return CAUSAL_ROW_TILE_TOKENS * node.mask.group


def block_class(hw: HardwareConfig, model: ModelSpec, layer: int) -> tuple[tuple[int, int], ...]:
    """Blocks with equal classes compile to identical programs (up to addresses)."""
    ops = ("qkv_proj", "o_proj", "gate_up_proj", "down_proj", "fc1", "fc2")
    return tuple(precision_for(hw, op, layer, model.layers) for op in ops)


def gemm_spec_for(node: GemmNode, hw: HardwareConfig, shape: StepShape, layers: int) -> GemmSpec:
    if node.weight == "kv":  # attention: both operands at activation / KV precision, no groups
        return GemmSpec(name=node.name, m=node.m, n=node.n, k=node.k, weight_bits=shape.kv_bits,
                        activation_bits=shape.activation_bits, output_bits=shape.activation_bits,
                        instances=node.instances, layer=node.layer).validate()
    if not node.quantized:
        return GemmSpec(name=node.name, m=node.m, n=node.n, k=node.k, weight_bits=UNQUANTIZED_BITS,
                        activation_bits=shape.activation_bits, output_bits=shape.activation_bits,
                        layer=node.layer).validate()
    weight_bits, activation_bits = precision_for(hw, op_base_name(node.name), node.layer, layers)
    return weight_gemm(node.name, node.m, node.n, node.k, hw, layer=node.layer,
                       weight_bits=weight_bits, activation_bits=activation_bits)


def compile_step(model: ModelSpec, hw: HardwareConfig, shape: StepShape,
                 layers: Sequence[int] | None = None) -> Program:
    """The program of one forward step through `layers` (default: every block)."""
    with collector_paused():
        return _compile_step(model, hw, shape, layers)


def _compile_step(model: ModelSpec, hw: HardwareConfig, shape: StepShape, layers: Sequence[int] | None) -> Program:
    graph = forward_graph(model, shape, layers)
    budget = TileBudget.from_hw(hw)
    builder = ProgramBuilder(align_bytes=allocation_alignment_bytes(hw))
    op_of: dict[str, int] = {}
    region_of: dict[str, Region] = {}
    kv_cache: dict[tuple[int, str], Region] = {}
    fused: dict[str, tuple[int, Region]] = {}  # PV node -> (fused op, O region); its softmax is absorbed
    # vector ops stream in chunks that fit one activation tile and one output tile
    chunk_bytes = min(budget.activation.tile_bytes, budget.output.tile_bytes)
    for node in ordered_nodes(graph):
        if node.name in fused:
            op, outputs = fused.pop(node.name)
        elif isinstance(node, GemmNode) and node.mask is not None and node.mask.masked_dim == "n" \
                and hw.attention == "fused":
            pv = _fused_pv_node(graph, node.name)
            op, outputs = _lower_fused(builder, node, pv, hw, shape, budget, op_of, region_of, kv_cache)
            fused[pv.name] = (op, outputs)
            fused[_softmax_name(graph, node.name)] = (op, outputs)
        elif isinstance(node, GemmNode):
            spec = gemm_spec_for(node, hw, shape, model.layers)
            row_limit = causal_row_limit(node)
            tiling = choose_tiling(spec, budget, hw.dequant.placement, row_limit)
            if node.weight == "kv":
                key = (node.layer, node.kv_cache)
                weights = kv_cache.setdefault(key, builder.allocate(spec.weight_bytes))
            else:
                weights = builder.allocate(spec.weight_bytes)
            activations = region_of.get(node.input) or builder.allocate(spec.activation_bytes)
            outputs = builder.allocate(spec.output_bytes)
            op = builder.add_gemm(spec, tiling, hw.dequant.placement, weights, activations, outputs,
                                  activation_after_op=op_of.get(node.input, NO_OP),
                                  weight_after_op=op_of.get(node.kv_input, NO_OP), mask=node.mask,
                                  group="attention" if node.weight == "kv" else "linear")
        else:
            op, outputs = _lower_vector(builder, node, shape.activation_bits, op_of, region_of, chunk_bytes)
        op_of[node.name] = op
        region_of[node.name] = outputs
    return builder.build()


def _softmax_name(graph: nx.DiGraph, qk: str) -> str:
    return next(iter(graph.successors(qk)))


def _fused_pv_node(graph: nx.DiGraph, qk: str) -> GemmNode:
    """The PV op that consumes the probabilities of this QK^T (via its softmax)."""
    return graph.nodes[next(iter(graph.successors(_softmax_name(graph, qk))))]["op"]


def _lower_fused(builder: ProgramBuilder, qk: GemmNode, pv: GemmNode, hw: HardwareConfig, shape: StepShape,
                 budget: TileBudget, op_of: dict[str, int], region_of: dict[str, Region],
                 kv_cache: dict[tuple[int, str], Region]) -> tuple[int, Region]:
    """One FlashAttention-style op for QK^T, softmax and PV (flash.py)."""
    assert qk.mask is not None
    flash = FlashShape(m=qk.m, ctx=qk.n, d=qk.k, instances=qk.instances, mask=qk.mask, kv_bits=shape.kv_bits,
                       activation_bits=shape.activation_bits)
    tiling = choose_flash_tiling(flash, budget, hw.vector.lanes)
    kv_bytes = flash.kv_block_bytes(flash.ctx) * flash.instances
    q_bytes = flash.q_block_bytes(flash.m) * flash.instances
    k = kv_cache.setdefault((qk.layer, qk.kv_cache), builder.allocate(kv_bytes))
    v = kv_cache.setdefault((pv.layer, pv.kv_cache), builder.allocate(kv_bytes))
    q = region_of.get(qk.input) or builder.allocate(q_bytes)
    o = builder.allocate(q_bytes)
    regions = FlashRegions(q, k, v, o, op_of.get(qk.input, NO_OP), op_of.get(qk.kv_input, NO_OP))
    op, _softmax = lower_fused_attention(builder, qk.name, qk.layer, flash, tiling, regions)
    return op, o


def _lower_vector(builder: ProgramBuilder, node: VectorNode, bits: int, op_of: dict[str, int],
                  region_of: dict[str, Region], chunk_bytes: int) -> tuple[int, Region]:
    nbytes = ceil_div(node.elements * bits, BITS_PER_BYTE)
    producers = [p for p in node.inputs if p]
    # a multi-input op (residual add) waits for its latest producer and reads from its region
    after_op = max((op_of[p] for p in producers), default=NO_OP)
    inputs = region_of[producers[-1]] if producers else builder.allocate(nbytes)
    outputs = builder.allocate(nbytes)
    chunk_elements = max(1, chunk_bytes * BITS_PER_BYTE // bits)
    group = "attention" if op_base_name(node.name).startswith("softmax") else "vector"
    op = builder.add_vector(node.name, node.layer, node.elements, node.ops_per_element, bits,
                            inputs, outputs, after_op, chunk_elements, group)
    return op, outputs
