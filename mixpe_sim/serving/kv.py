"""The paged KV cache: what the memory holds besides the weights, in blocks of `block_tokens`."""

from __future__ import annotations

from dataclasses import dataclass

from mixpe_sim.config.models import HardwareConfig
from mixpe_sim.units import BITS_PER_BYTE, ceil_div
from mixpe_sim.workload.gemm import UNQUANTIZED_BITS, weight_gemm, weight_gemms
from mixpe_sim.workload.models import ModelSpec


def weight_bytes(hw: HardwareConfig, model: ModelSpec, quantize_lm_head: bool = False) -> int:
    """Bytes of the model's weights in DRAM at the design's quantization (packed weights and scales);
    the embedding table and an unquantized LM head at 16 bit."""
    blocks = sum(count * spec.weight_bytes for count, spec in weight_gemms(hw, model, 1))
    embedding = ceil_div(model.vocab * model.hidden * UNQUANTIZED_BITS, BITS_PER_BYTE)
    head = weight_gemm("lm_head", 1, model.vocab, model.hidden, hw).weight_bytes if quantize_lm_head else embedding
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
