"""One forward step of a transformer as a networkx op graph, written like a forward pass.

Every op declares the shapes it consumes and produces; wiring a producer to a consumer with a
different shape raises at build time (LLMCompass-style shape checks). Tensors are 2-D
(rows, features); attention tensors fold batch and heads into rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import networkx as nx

from mixpe_sim.errors import WorkloadError
from mixpe_sim.workload.models import ModelSpec
from mixpe_sim.workload.shapes import CausalMask, StepShape

WeightSource = Literal["static", "kv"]

# Element-wise work per element on the vector unit (assumed; docs/modelling.md "Vector unit").
OPS_PER_ELEMENT = {
    "embed": 1,  # gather one row
    "embed_with_positions": 2,  # gather + add learned position embedding (OPT)
    "rms_norm": 4,  # square, accumulate, scale, multiply by gain
    "layer_norm": 6,  # mean, centre, square, accumulate, scale, affine
    "rope": 3,  # rotate pairs: two multiplies and one add per element
    "kv_quantize": 3,  # scale, round, clamp into the KV precision
    "softmax": 5,  # max, subtract, exp, sum, divide
    "silu_mul": 5,  # sigmoid (~3), multiply, multiply by the up projection
    "relu": 1,
    "residual_add": 1,
}


@dataclass(frozen=True, slots=True)
class Tensor:
    producer: str  # node name ("" for data already in DRAM)
    rows: int
    cols: int


@dataclass(frozen=True, slots=True)
class GemmNode:
    name: str
    layer: int
    m: int  # rows per instance
    n: int
    k: int
    instances: int
    weight: WeightSource
    quantized: bool  # weights stored at the hardware's low-bit format (else 16 bit)
    input: str  # producer of the A operand ("" = already in DRAM)
    kv_input: str  # producer the KV operand waits for ("" for static weights)
    kv_cache: str = ""  # identity of the KV-cache tensor read ("" for static weights)
    mask: CausalMask | None = None  # attention: products outside the causal mask are skipped


@dataclass(frozen=True, slots=True)
class VectorNode:
    name: str
    layer: int
    elements: int
    ops_per_element: int
    inputs: tuple[str, ...]


Node = GemmNode | VectorNode


class _Forward:
    """Appends nodes to the graph while checking shapes."""

    def __init__(self) -> None:
        self.graph = nx.DiGraph()

    def _add(self, node: Node, inputs: tuple[str, ...]) -> None:
        if node.name in self.graph:
            raise WorkloadError(f"duplicate op name {node.name}")
        self.graph.add_node(node.name, op=node, order=self.graph.number_of_nodes())
        for producer in inputs:
            if producer:
                self.graph.add_edge(producer, node.name)

    def vector(self, name: str, layer: int, kind: str, inputs: list[Tensor], out: Tensor,
               elements: int | None = None) -> Tensor:
        count = elements if elements is not None else out.rows * out.cols
        self._add(VectorNode(name, layer, count, OPS_PER_ELEMENT[kind], tuple(t.producer for t in inputs)),
                  tuple(t.producer for t in inputs))
        return Tensor(name, out.rows, out.cols)

    def linear(self, name: str, layer: int, x: Tensor, in_features: int, out_features: int,
               quantized: bool = True) -> Tensor:
        if x.cols != in_features:
            raise WorkloadError(f"{name}: input has {x.cols} features, weight expects {in_features}")
        self._add(GemmNode(name, layer, x.rows, out_features, in_features, 1, "static", quantized,
                           x.producer, ""), (x.producer,))
        return Tensor(name, x.rows, out_features)

    def attention_gemm(self, name: str, layer: int, a: Tensor, kv: Tensor, m: int, n: int, k: int,
                       instances: int, out: Tensor, kv_cache: str, mask: CausalMask) -> Tensor:
        if a.rows * a.cols != m * k * instances:
            raise WorkloadError(f"{name}: A operand holds {a.rows}x{a.cols}, expected {instances} x {m}x{k}")
        if out.rows * out.cols != m * n * instances:
            raise WorkloadError(f"{name}: output {out.rows}x{out.cols} != {instances} x {m}x{n}")
        self._add(GemmNode(name, layer, m, n, k, instances, "kv", False, a.producer, kv.producer,
                           kv_cache, mask), (a.producer, kv.producer))
        return Tensor(name, out.rows, out.cols)


def forward_graph(model: ModelSpec, shape: StepShape, layers: Sequence[int] | None = None) -> nx.DiGraph:
    """The op graph of one forward step through the given transformer blocks (default: all).

    A subset of blocks (e.g. [0, 1, 7]) keeps each block's real index, so per-block properties
    such as a mixed-precision map apply as they would in the full model.
    """
    blocks = range(model.layers) if layers is None else layers
    fwd = _Forward()
    if model.family == "paper-linear":
        _paper_linear(fwd, model, blocks)
        return fwd.graph
    rows = shape.tokens
    h = model.hidden
    x = fwd.vector("embed", -1, "embed_with_positions" if model.learned_positions else "embed",
                   [], Tensor("", rows, h))
    for layer in blocks:
        x = _block(fwd, model, shape, layer, x)
    norm = "layer_norm" if model.family == "opt" else "rms_norm"
    logits = shape.logit_rows  # only the last token of each sequence that emits one
    if logits:
        last = fwd.vector("final_norm", -1, norm, [x], Tensor("", logits, h), elements=logits * h)
        fwd.linear("lm_head", -1, last, h, model.vocab, quantized=shape.quantize_lm_head)
    return fwd.graph


def _block(fwd: _Forward, model: ModelSpec, shape: StepShape, layer: int, x: Tensor) -> Tensor:
    h, rows = model.hidden, x.rows
    norm = "layer_norm" if model.family == "opt" else "rms_norm"
    p = f"L{layer}."
    normed = fwd.vector(p + "attn_norm", layer, norm, [x], Tensor("", rows, h))
    qkv = fwd.linear(p + "qkv_proj", layer, normed, h, model.q_dim + 2 * model.kv_dim)
    if model.family == "opt":
        q_k = qkv  # OPT uses learned absolute positions: no rotary embedding
    else:
        q_k = fwd.vector(p + "rope", layer, "rope", [qkv], Tensor("", rows, model.q_dim + 2 * model.kv_dim),
                         elements=rows * (model.q_dim + model.kv_dim))
    kv = q_k
    if shape.kv_bits != shape.activation_bits:
        kv = fwd.vector(p + "kv_quantize", layer, "kv_quantize", [q_k], Tensor("", rows, 2 * model.kv_dim))
    out = _attention(fwd, model, shape, layer, q_k, kv)
    attn = fwd.linear(p + "o_proj", layer, out, model.q_dim, h)
    x = fwd.vector(p + "attn_residual", layer, "residual_add", [x, attn], Tensor("", rows, h))
    normed = fwd.vector(p + "ffn_norm", layer, norm, [x], Tensor("", rows, h))
    if model.gated_mlp:
        gate_up = fwd.linear(p + "gate_up_proj", layer, normed, h, 2 * model.intermediate)
        hidden = fwd.vector(p + "act_mul", layer, "silu_mul", [gate_up], Tensor("", rows, model.intermediate))
        ffn = fwd.linear(p + "down_proj", layer, hidden, model.intermediate, h)
    else:
        up = fwd.linear(p + "fc1", layer, normed, h, model.intermediate)
        hidden = fwd.vector(p + "relu", layer, "relu", [up], Tensor("", rows, model.intermediate))
        ffn = fwd.linear(p + "fc2", layer, hidden, model.intermediate, h)
    return fwd.vector(p + "ffn_residual", layer, "residual_add", [x, ffn], Tensor("", rows, h))


def _attention(fwd: _Forward, model: ModelSpec, shape: StepShape, layer: int, q: Tensor, kv: Tensor) -> Tensor:
    """QK^T, softmax, PV per (sequence, KV head), causal; GQA folds the query heads of a group into rows.

    Sequences of equal shape share one op (instances = sequences x KV heads); with several shapes
    each gets its own ops, named with a "[new+before]" suffix. K and V of a KV head are read once
    for all the query heads of its group.
    """
    groups = shape.attention_groups()
    out = q
    for index, (new, before, count) in enumerate(groups):
        suffix = "" if len(groups) == 1 else f"[{new}+{before}]"
        out = _attention_group(fwd, model, layer, q, kv, new, before, count, suffix, index)
    return Tensor(out.producer, shape.tokens, model.q_dim)


def _attention_group(fwd: _Forward, model: ModelSpec, layer: int, q: Tensor, kv: Tensor, new: int,
                     before: int, count: int, suffix: str, index: int) -> Tensor:
    p = f"L{layer}."
    group = model.heads // model.kv_heads
    instances = count * model.kv_heads
    m = group * new  # query rows per instance
    d, ctx = model.head_dim, before + new
    q_only = Tensor(q.producer, count * new, model.q_dim)
    kv_cache = Tensor(kv.producer, instances * ctx, d)
    score_mask = CausalMask(group, before, "n")
    visible = score_mask.visible_products(m) * instances  # score elements inside the mask
    scores = fwd.attention_gemm(p + "qk" + suffix, layer, q_only, kv_cache, m=m, n=ctx, k=d, instances=instances,
                                out=Tensor("", instances * m, ctx), kv_cache=f"k{index}", mask=score_mask)
    probs = fwd.vector(p + "softmax" + suffix, layer, "softmax", [scores], Tensor("", instances * m, ctx),
                       elements=visible)
    return fwd.attention_gemm(p + "pv" + suffix, layer, probs, kv_cache, m=m, n=d, k=ctx, instances=instances,
                              out=Tensor("", count * new, model.q_dim), kv_cache=f"v{index}",
                              mask=CausalMask(group, before, "k"))


def _paper_linear(fwd: _Forward, model: ModelSpec, blocks: Sequence[int]) -> None:
    """The MixPE paper's workload: four independent weight GEMMs per block at M = paper_rows."""
    h, m = model.hidden, model.paper_rows
    for layer in blocks:
        p = f"L{layer}."
        for name, k, n in (("qkv_proj", h, 3 * h), ("o_proj", h, h), ("fc1", h, 4 * h), ("fc2", 4 * h, h)):
            fwd.linear(p + name, layer, Tensor("", m, k), k, n)


def ordered_nodes(graph: nx.DiGraph) -> list[Node]:
    """Topological order, ties broken by insertion order, so lowering is deterministic."""
    order = nx.lexicographical_topological_sort(graph, key=lambda name: graph.nodes[name]["order"])
    return [graph.nodes[name]["op"] for name in order]
