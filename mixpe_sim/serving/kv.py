"""The paged KV cache: what the memory holds besides the weights, in blocks of `block_tokens`."""

from __future__ import annotations

from dataclasses import dataclass

from mixpe_sim.config.models import HardwareConfig
from mixpe_sim.units import BITS_PER_BYTE, ceil_div
from mixpe_sim.workload.gemm import precision_for, weight_gemm
from mixpe_sim.workload.models import ModelSpec

UNQUANTIZED_BYTES = 2  # FP16 embedding table and LM head (unless the LM head is quantized)


def weight_bytes(hw: HardwareConfig, model: ModelSpec, quantize_lm_head: bool = False) -> int:
    """Bytes of the model's weights in DRAM at the design's quantization (packed weights and scales)."""
    h, inter = model.hidden, model.intermediate
    ffn = [("gate_up_proj", h, 2 * inter), ("down_proj", inter, h)] if model.gated_mlp \
        else [("fc1", h, inter), ("fc2", inter, h)]
    shapes = [("qkv_proj", h, model.q_dim + 2 * model.kv_dim), ("o_proj", model.q_dim, h), *ffn]
    blocks = sum(weight_gemm(op, 1, n, k, hw, weight_bits=precision_for(hw, op, layer, model.layers)[0]).weight_bytes
                 for layer in range(model.layers) for op, k, n in shapes)
    embedding = model.vocab * h * UNQUANTIZED_BYTES
    head = weight_gemm("lm_head", 1, model.vocab, h, hw).weight_bytes if quantize_lm_head else embedding
    return blocks + embedding + (0 if model.tied_embeddings and not quantize_lm_head else head)


def kv_bytes_per_token(model: ModelSpec, kv_bits: int) -> int:
    return ceil_div(2 * model.layers * model.kv_dim * kv_bits, BITS_PER_BYTE)


@dataclass
class KvCache:
    """Block accounting (vLLM-style): a sequence of L tokens holds ceil(L / block_tokens) blocks."""

    total_blocks: int | None  # None: the memory states no capacity (the paper's flat link): unbounded
    block_tokens: int
    used_blocks: int = 0

    @classmethod
    def for_design(cls, hw: HardwareConfig, model: ModelSpec, kv_bits: int, block_tokens: int,
                   quantize_lm_head: bool = False) -> KvCache:
        capacity = hw.memory.capacity_bytes
        if capacity is None:
            return cls(None, block_tokens)
        free = capacity - weight_bytes(hw, model, quantize_lm_head)
        return cls(max(0, free // (block_tokens * kv_bytes_per_token(model, kv_bits))), block_tokens)

    def blocks_for(self, tokens: int) -> int:
        return ceil_div(tokens, self.block_tokens)

    def can_grow(self, blocks: int) -> bool:
        return self.total_blocks is None or self.used_blocks + blocks <= self.total_blocks

    def grow(self, blocks: int) -> None:
        self.used_blocks += blocks

    def free(self, blocks: int) -> None:
        self.used_blocks -= blocks

    @property
    def occupancy(self) -> float:
        return self.used_blocks / self.total_blocks if self.total_blocks else 0.0
