"""The compiled program: plain, immutable data consumed by the engine.

A decode step of a 7B model has ~10^5 tiles and tokens but only a handful of distinct GEMM shapes
(LLaMA-2-7B at context 2048: 2,177 GEMM instances of 7 shapes): tokens are stored as columns and the
PE array's steps as runs that share one template per shape, so neither building nor walking a
program makes an object per tile (TileStep and Token are the views for inspection).

A program is a list of ops (GEMMs and vector ops), the tokens they move (tiles with real byte
sizes, each one contiguous DRAM range) and the steps the compute units execute in order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, NamedTuple

from mixpe_sim.arch.pe import DequantPlacement

# "on_chip": data a fused op produces and consumes on chip (scores, probabilities): never loaded
# from DRAM, ready at once, no buffer space accounted (docs/modelling.md "Attention")
TokenBuffer = Literal["weight", "activation", "on_chip"]
TOKEN_BUFFERS: tuple[TokenBuffer, ...] = ("weight", "activation", "on_chip")
# what an op is for, so results can show attention apart from the weight GEMMs:
# "linear" (weight GEMMs), "attention" (QK^T, softmax, PV), "vector" (norms, activations, residuals)
OpGroup = Literal["linear", "attention", "vector"]
NO_OP = -1
NO_TOKEN = -1


class Token(NamedTuple):
    """A tile moved from DRAM into an on-chip buffer."""

    token_id: int
    buffer: TokenBuffer
    dram_addr: int
    payload_bytes: int  # packed values
    scale_bytes: int  # per-group scales and zero points travelling with a weight tile
    # op whose results must be in DRAM before this tile is loaded (NO_OP if none); for an on-chip
    # token, the op of the step that produces it
    after_op: int

    @property
    def nbytes(self) -> int:
        return self.payload_bytes + self.scale_bytes


@dataclass(frozen=True, slots=True)
class OpInfo:
    """One operator of the workload as the engine and the report see it."""

    name: str
    kind: Literal["gemm", "vector"]
    layer: int  # transformer block index, -1 outside blocks
    weight_bits: int
    activation_bits: int
    output_bits: int
    dequant: DequantPlacement
    group_size: int
    macs: int  # analytic MAC count of the whole op (all instances)
    elements: int  # vector ops: elements processed
    instances: int = 1  # independent copies folded into this op (heads, batch)
    group: OpGroup = "linear"


class TileStep(NamedTuple):
    """One (Mt x Kt) x (Kt x Nt) tile on the PE array, accumulating into output tile `out_id`."""

    op: int
    mt: int
    nt: int
    kt: int
    weight_token: int
    activation_token: int
    out_id: int
    first_k: bool
    last_k: bool
    out_addr: int
    out_bytes: int  # bytes written back to DRAM when the tile is complete (0: the result stays on chip)
    out_token: int = NO_TOKEN  # the on-chip token this tile's result becomes (fused attention's scores)


class VectorStep(NamedTuple):
    """An element-wise / reduction op on the vector unit, streaming through DRAM."""

    op: int
    elements: int
    ops_per_element: int
    in_token: int
    out_addr: int
    out_bytes: int
    out_token: int = NO_TOKEN  # the on-chip token this step's result becomes (fused attention's probabilities)


Step = TileStep | VectorStep


# TileStep without `op`, token and output ids relative to the run's t0 / out0, `out_addr` to its o_base;
# `out_token` is absolute (NO_TOKEN in templates)
RelativeTileStep = tuple[int, int, int, int, int, int, bool, bool, int, int, int]


class TileRun(NamedTuple):
    """Consecutive PE-array steps of one op: `steps` hold token and output ids relative to `t0` and
    `out0` and output addresses relative to `o_base`. A GEMM instance is one run that shares its steps
    with every instance of the same shape (the template), so a 10^5-tile program is built and walked
    without a record per tile; a single fused-attention step is a run of one with zero offsets."""

    steps: tuple[RelativeTileStep, ...]
    op: int
    t0: int
    out0: int
    o_base: int


@dataclass(frozen=True, slots=True)
class TokenTable:
    """Every token of a program as columns (index == token id): building and reading 10^5 tokens
    this way makes no object per token. `table[i]` gives token i as a Token."""

    buffer: tuple[TokenBuffer, ...]
    dram_addr: tuple[int, ...]
    payload_bytes: tuple[int, ...]
    scale_bytes: tuple[int, ...]
    after_op: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.buffer)

    def __getitem__(self, token_id: int) -> Token:
        return Token(token_id, self.buffer[token_id], self.dram_addr[token_id], self.payload_bytes[token_id],
                     self.scale_bytes[token_id], self.after_op[token_id])

    def __iter__(self) -> Iterator[Token]:
        return map(Token, range(len(self)), self.buffer, self.dram_addr, self.payload_bytes, self.scale_bytes,
                   self.after_op)


@dataclass(frozen=True)
class Program:
    ops: tuple[OpInfo, ...]
    tokens: TokenTable
    token_uses: tuple[int, ...]  # steps that read each token; its space is freed after the last
    tile_runs: tuple[TileRun, ...]  # the PE array's steps in order
    vector_steps: tuple[VectorStep, ...]  # the vector unit's steps in order
    load_orders: dict[TokenBuffer, tuple[int, ...]]  # per buffer: its tokens in order of first use
    filled_bytes: dict[TokenBuffer, int]  # per buffer: payload bytes of all its tokens
    scale_bytes: int  # scale bytes of all tokens (they go to the scale SRAM, or the weight buffer)
    op_dram_bytes: tuple[int, ...]  # per op: the tiles it is first to read plus the results it writes back
    op_stores: tuple[int, ...]  # per op: results it hands to the store DMA

    def load_order(self, buffer: TokenBuffer) -> tuple[int, ...]:
        """Tokens of one buffer in order of first use (the lowering numbers tokens at first use)."""
        return self.load_orders.get(buffer, ())

    def dram_bytes_per_op(self) -> list[int]:
        """DRAM bytes each op moves: the tiles it is first to read plus the results it writes back."""
        return list(self.op_dram_bytes)

    def stores_per_op(self) -> list[int]:
        return list(self.op_stores)

    def tile_steps(self) -> Iterator[TileStep]:
        """The PE array's steps in order, as absolute TileSteps (for inspection; the engine walks runs)."""
        for steps, op, t0, out0, o_base in self.tile_runs:
            for mt, nt, kt, w, a, out, first_k, last_k, out_addr, out_bytes, out_token in steps:
                yield TileStep(op, mt, nt, kt, t0 + w, t0 + a, out0 + out, first_k, last_k, o_base + out_addr,
                               out_bytes, out_token)

    @property
    def steps(self) -> list[Step]:
        """Every step: the PE array's in order, then the vector unit's in order."""
        return [*self.tile_steps(), *self.vector_steps]
