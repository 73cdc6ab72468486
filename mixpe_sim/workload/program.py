"""The compiled program: plain, immutable data consumed by the engine.

Per-tile records are NamedTuples: a decode step of a 7B model has ~10^5 of them, and tuples are the
cheapest immutable records to create and read.

A program is a list of ops (GEMMs and vector ops), the tokens they move (tiles with real byte
sizes, each one contiguous DRAM range) and the steps the compute units execute in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

from mixpe_sim.arch.pe import DequantPlacement

# "on_chip": data a fused op produces and consumes on chip (scores, probabilities): never loaded
# from DRAM, ready at once, no buffer space accounted (docs/modelling.md "Attention")
TokenBuffer = Literal["weight", "activation", "on_chip"]
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


@dataclass(frozen=True)
class Program:
    ops: tuple[OpInfo, ...]
    tokens: tuple[Token, ...]  # index == token_id
    token_uses: tuple[int, ...]  # steps that read each token; its space is freed after the last
    steps: tuple[Step, ...]
    op_dram_bytes: tuple[int, ...]  # per op: the tiles it is first to read plus the results it writes back
    op_stores: tuple[int, ...]  # per op: results it hands to the store DMA

    def load_order(self, buffer: TokenBuffer) -> list[int]:
        """Tokens of one buffer in order of first use (the lowering numbers tokens at first use)."""
        return [token.token_id for token in self.tokens if token.buffer == buffer]

    def dram_bytes_per_op(self) -> list[int]:
        """DRAM bytes each op moves: the tiles it is first to read plus the results it writes back."""
        return list(self.op_dram_bytes)

    def stores_per_op(self) -> list[int]:
        return list(self.op_stores)

    def unit_steps(self) -> tuple[list[TileStep], list[VectorStep]]:
        """The PE array's steps and the vector unit's, each in program order."""
        tiles: list[TileStep] = []
        vectors: list[VectorStep] = []
        for step in self.steps:
            (tiles if type(step) is TileStep else vectors).append(step)  # type: ignore[arg-type]
        return tiles, vectors
