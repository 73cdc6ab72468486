"""Closed-form estimate of one forward step, from the same tiling choices the compiler makes.

Pure and fast (no lowering, no SimPy): a GEMM costs its tiles' array cycles (every tile at its real
size) or its DRAM traffic at peak bandwidth, whichever is longer; fused attention its blocking's
estimate; a vector op its lane cycles. The serving step model (serving/latency.py) scales these
estimates by what the discrete-event simulation measured on nearby steps; the estimate carries what
that scaling cannot (array folds and K-split factors that change with the batch, attention blocks
that change with the context), which is where step time jumps.

A step's estimate splits into a part that depends only on its row counts (linear layers, norms, LM
head) and one per sequence (attention); both are cached, so estimating a serving iteration costs a
few dictionary lookups per sequence.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property

import networkx as nx

from mixpe_sim.config.models import HardwareConfig
from mixpe_sim.units import BITS_PER_BYTE, ceil_div
from mixpe_sim.workload.compile import block_class, causal_row_limit, gemm_spec_for
from mixpe_sim.workload.flash import FlashShape, choose_flash_tiling
from mixpe_sim.workload.gemm import GemmSpec
from mixpe_sim.workload.graph import GemmNode, VectorNode, forward_graph
from mixpe_sim.workload.models import ModelSpec, op_base_name
from mixpe_sim.workload.shapes import SequenceShape, StepShape
from mixpe_sim.workload.tiling import TileBudget, Tiling, array_cycles, choose_tiling, precision_of


@dataclass(frozen=True, slots=True)
class StepEstimate:
    """Estimated cycles, DRAM bytes and MACs of a step (or of a part of one): additive."""

    cycles: float = 0.0
    dram_bytes: float = 0.0
    macs: float = 0.0

    def __add__(self, other: StepEstimate) -> StepEstimate:
        return StepEstimate(self.cycles + other.cycles, self.dram_bytes + other.dram_bytes, self.macs + other.macs)

    def __mul__(self, factor: float) -> StepEstimate:
        return StepEstimate(self.cycles * factor, self.dram_bytes * factor, self.macs * factor)


@dataclass
class StepEstimator:
    """Estimates of forward steps of one model on one design (module docstring)."""

    hw: HardwareConfig
    model: ModelSpec
    kv_bits: int
    quantize_lm_head: bool
    _rows: dict[tuple[int, int], StepEstimate] = field(default_factory=dict, repr=False)
    _attention: dict[tuple[int, int], StepEstimate] = field(default_factory=dict, repr=False)

    def estimate(self, shape: StepShape) -> StepEstimate:
        total = self.rows_estimate(shape.tokens, shape.logit_rows)
        for new, before, count in shape.attention_groups():
            total = total + self.attention_estimate(new, before) * count
        return total

    def rows_estimate(self, tokens: int, logit_rows: int) -> StepEstimate:
        """Everything but attention: linear layers, vector ops, LM head of `logit_rows` rows."""
        key = (tokens, logit_rows)
        if key not in self._rows:
            # any sequences with these row counts will do: attention, where they differ, is left out
            if logit_rows:
                sequences = (SequenceShape(tokens - logit_rows + 1),) + (SequenceShape(1),) * (logit_rows - 1)
            else:
                sequences = (SequenceShape(tokens, 0, emits_token=False),)
            self._rows[key] = self._sum(self.shape_of(sequences), attention=False)
        return self._rows[key]

    def attention_estimate(self, new: int, before: int) -> StepEstimate:
        """Attention of one sequence through every block (QK^T, softmax, PV of every head)."""
        key = (new, before)
        if key not in self._attention:
            self._attention[key] = self._sum(self.shape_of((SequenceShape(new, before),)), attention=True)
        return self._attention[key]

    def _sum(self, shape: StepShape, attention: bool) -> StepEstimate:
        """The attention ops, or all the others, of one block per precision class, times its blocks."""
        classes = [block_class(self.hw, self.model, layer) for layer in range(self.model.layers)]
        representative: dict[tuple[tuple[int, int], ...], int] = {}
        for layer, cls in enumerate(classes):
            representative.setdefault(cls, layer)
        counts = Counter(classes)
        repeats = {layer: counts[cls] for cls, layer in representative.items()}
        graph = forward_graph(self.model, shape, sorted(repeats))
        total = StepEstimate()
        for name in graph.nodes:
            node = graph.nodes[name]["op"]
            if _is_attention(node) == attention:
                total = total + self._node(graph, name, shape) * repeats.get(node.layer, 1)
        return total

    def _node(self, graph: nx.DiGraph, name: str, shape: StepShape) -> StepEstimate:
        node = graph.nodes[name]["op"]
        if isinstance(node, VectorNode):
            if op_base_name(name).startswith("softmax") and self.hw.attention == "fused":
                return StepEstimate()  # runs inside the fused attention op
            moved = 2 * ceil_div(node.elements * shape.activation_bits, BITS_PER_BYTE)  # read and write
            return StepEstimate(node.elements * node.ops_per_element / self.hw.vector.lanes, moved)
        budget = self._budget
        if node.weight == "kv" and self.hw.attention == "fused":
            if node.mask is None or node.mask.masked_dim != "n":
                return StepEstimate()  # PV: part of the fused op costed at its QK^T
            flash = FlashShape(m=node.m, ctx=node.n, d=node.k, instances=node.instances, mask=node.mask,
                               kv_bits=shape.kv_bits, activation_bits=shape.activation_bits)
            tiling = choose_flash_tiling(flash, budget, self.hw.vector.lanes)
            return StepEstimate(tiling.est_cycles, tiling.est_dram_bytes, flash.macs)
        spec = gemm_spec_for(node, self.hw, shape, self.model.layers)
        placement = self.hw.dequant.placement
        tiling = choose_tiling(spec, budget, placement, causal_row_limit(node))
        if node.mask is None:
            macs = spec.macs
        else:  # the products inside the causal mask, times the dimension that is not over keys
            unmasked = node.k if node.mask.masked_dim == "n" else node.n
            macs = node.mask.visible_products(node.m) * unmasked * node.instances
        return StepEstimate(gemm_cycles(spec, tiling, budget, placement), tiling.est_dram_bytes, macs)

    @cached_property
    def _budget(self) -> TileBudget:
        return TileBudget.from_hw(self.hw)

    def shape_of(self, sequences: tuple[SequenceShape, ...]) -> StepShape:
        """The step of these sequences at this estimator's precisions."""
        return StepShape(sequences, self.kv_bits, self.hw.quant.activation_bits, self.quantize_lm_head)


def _is_attention(node: GemmNode | VectorNode) -> bool:
    if isinstance(node, GemmNode):
        return node.weight == "kv"
    return op_base_name(node.name).startswith("softmax")


def gemm_cycles(spec: GemmSpec, tiling: Tiling, budget: TileBudget, placement: str) -> float:
    """A GEMM's array cycles with every tile at its real size, or its DRAM time at peak."""
    compute = array_cycles(spec, budget, precision_of(spec, placement), tiling.mt, tiling.nt, tiling.kt)
    memory = 0.0 if math.isinf(budget.dram_bytes_per_cycle) else tiling.est_dram_bytes / budget.dram_bytes_per_cycle
    return max(compute, memory)
