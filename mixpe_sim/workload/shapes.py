"""What a forward step processes, as plain data: the sequences of a batch and the causal mask of
their attention. No networkx here, so the GEMM path and the serving scheduler import it cheaply;
workload/graph.py builds the op graph from these shapes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mixpe_sim.errors import WorkloadError

Phase = Literal["prefill", "decode"]
KV_BITS_CHOICES = (4, 8, 16)  # KV-cache precisions the lowering stores (FP16, INT8, INT4)


@dataclass(frozen=True, slots=True)
class CausalMask:
    """Which products of an attention GEMM are visible under the causal mask.

    Query rows are token-major: row r is new token r // group (the `group` query heads sharing one
    KV head are adjacent). New token t sees the keys 0 .. context_before + t.
    `masked_dim` is the GEMM dimension that runs over keys: "n" for QK^T, "k" for PV.
    """

    group: int
    context_before: int
    masked_dim: Literal["n", "k"]

    def visible_keys(self, row: int) -> int:
        """Keys visible to query row `row` (0-based)."""
        return self.context_before + row // self.group + 1

    def visible_products(self, rows: int) -> int:
        """Sum over the first `rows` query rows of their visible keys (closed form per full token)."""
        tokens, rest = divmod(rows, self.group)
        full = self.group * (tokens * self.context_before + tokens * (tokens + 1) // 2)
        return full + rest * (self.context_before + tokens + 1)


@dataclass(frozen=True, slots=True)
class SequenceShape:
    """One sequence of a step: `new_tokens` processed now, attending to `context_before` earlier
    tokens (already in the KV cache) and causally to the new tokens before them.

    Prefill: new = prompt, before = 0. Decode: new = 1, before = context - 1. A chunk of a chunked
    prefill: new = chunk, before = tokens of the prompt already processed.
    `emits_token`: the step computes this sequence's next-token logits (false for a prefill chunk
    that does not finish its prompt).
    """

    new_tokens: int
    context_before: int = 0
    emits_token: bool = True

    @property
    def context(self) -> int:
        """KV length attended to by the last new token (including the new tokens)."""
        return self.context_before + self.new_tokens

    @property
    def is_decode(self) -> bool:
        """One new token after a cached context (a one-token prompt is a prefill)."""
        return self.new_tokens == 1 and self.context_before > 0


@dataclass(frozen=True, slots=True)
class StepShape:
    """What one forward step processes: a batch of sequences, each with its own shape."""

    sequences: tuple[SequenceShape, ...]
    kv_bits: int
    activation_bits: int
    quantize_lm_head: bool

    def __post_init__(self) -> None:
        if not self.sequences:
            raise WorkloadError("a step needs at least one sequence")
        if self.kv_bits not in KV_BITS_CHOICES:
            raise WorkloadError(f"kv_bits must be one of {', '.join(map(str, KV_BITS_CHOICES))} (got {self.kv_bits})")
        for i, s in enumerate(self.sequences):
            if s.new_tokens < 1 or s.context_before < 0:
                raise WorkloadError(f"sequence {i}: new_tokens must be >= 1 and context_before >= 0 "
                                    f"(got {s.new_tokens}, {s.context_before})")

    @classmethod
    def uniform(cls, phase: Phase, batch: int, seq: int, context: int, kv_bits: int, activation_bits: int,
                quantize_lm_head: bool) -> StepShape:
        """`batch` equal sequences of `seq` new tokens each, attending over `context` tokens in all
        (so `context - seq` earlier ones). Prefill: seq = context; decode: seq = 1."""
        if phase == "decode" and seq != 1:
            raise WorkloadError(f"a decode step processes one new token per sequence (got {seq})")
        if context < seq:
            raise WorkloadError(f"context {context} is shorter than the {seq} new tokens")
        return cls((SequenceShape(seq, context - seq),) * batch, kv_bits, activation_bits, quantize_lm_head)

    @property
    def tokens(self) -> int:
        """Rows of the linear layers: the new tokens of all sequences."""
        return sum(s.new_tokens for s in self.sequences)

    @property
    def logit_rows(self) -> int:
        return sum(1 for s in self.sequences if s.emits_token)

    def attention_groups(self) -> list[tuple[int, int, int]]:
        """(new_tokens, context_before, count): sequences of equal shape, the most attention work first.

        The order is the compiler's: the longest attention runs first, so the short ones (and the
        output projection waiting for all of them) follow it, as longest-first list scheduling does;
        a step's time then does not depend on the order its sequences were listed in."""
        counts: dict[tuple[int, int], int] = {}
        for s in self.sequences:
            key = (s.new_tokens, s.context_before)
            counts[key] = counts.get(key, 0) + 1
        def work(group: tuple[int, int]) -> tuple[int, int]:
            new, before = group
            return new * (2 * before + new + 1), before  # twice the causal products per head and dim
        return [(new, before, counts[new, before]) for new, before in sorted(counts, key=work, reverse=True)]
