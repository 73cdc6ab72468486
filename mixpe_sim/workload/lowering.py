"""Lower GEMMs and vector ops into a Program: tokens with DRAM addresses, tile steps, releases.

Layout assumption (docs/modelling.md): every tensor is stored tile-contiguous, so each tile is one
contiguous DRAM range (weights are packed offline; producers write outputs in tile order).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mixpe_sim.arch.pe import DequantPlacement
from mixpe_sim.units import ceil_div
from mixpe_sim.workload.gemm import GemmSpec
from mixpe_sim.workload.graph import CausalMask
from mixpe_sim.workload.program import NO_OP, OpGroup, OpInfo, Program, TileStep, Token, TokenBuffer, VectorStep
from mixpe_sim.workload.tiling import Tiling

DRAM_ALIGN_BYTES = 4096


@dataclass(frozen=True, slots=True)
class Region:
    """A tensor's place in DRAM."""

    base: int
    nbytes: int


@dataclass
class ProgramBuilder:
    """Accumulates ops, tokens and steps for one program; `build()` freezes them."""

    ops: list[OpInfo] = field(default_factory=list)
    tokens: list[Token] = field(default_factory=list)
    token_uses: list[int] = field(default_factory=list)
    steps: list[TileStep | VectorStep] = field(default_factory=list)
    next_addr: int = 0
    next_out_id: int = 0

    def allocate(self, nbytes: int) -> Region:
        region = Region(self.next_addr, nbytes)
        self.next_addr += ceil_div(max(nbytes, 1), DRAM_ALIGN_BYTES) * DRAM_ALIGN_BYTES
        return region

    def add_op(self, info: OpInfo) -> int:
        self.ops.append(info)
        return len(self.ops) - 1

    def new_token(self, buffer: TokenBuffer, addr: int, payload: int, after_op: int) -> int:
        return self._token(buffer, addr, payload, 0, after_op)

    def use(self, token_id: int) -> None:
        self.token_uses[token_id] += 1

    def new_output(self) -> int:
        out_id = self.next_out_id
        self.next_out_id += 1
        return out_id

    def _token(self, buffer: TokenBuffer, addr: int, payload: int, scales: int, after_op: int) -> int:
        token_id = len(self.tokens)
        self.tokens.append(Token(token_id, buffer, addr, payload, scales, after_op))
        self.token_uses.append(0)
        return token_id

    def add_gemm(self, spec: GemmSpec, tiling: Tiling, placement: DequantPlacement,
                 weights: Region, activations: Region, outputs: Region,
                 activation_after_op: int = NO_OP, weight_after_op: int = NO_OP,
                 mask: CausalMask | None = None, group: OpGroup = "linear") -> int:
        """Append one GEMM (all its instances). Returns its op index.

        With a causal `mask`, tiles wholly outside the mask are skipped and the last visible tile
        along the key dimension is cut to the last key any of its rows sees (docs/modelling.md).
        """
        op = len(self.ops)
        macs = spec.macs
        if mask is not None:
            other = spec.k if mask.masked_dim == "n" else spec.n
            macs = mask.visible_products(spec.m) * other * spec.instances
        self.ops.append(OpInfo(
            name=spec.name, kind="gemm", layer=spec.layer,
            weight_bits=spec.weight_bits, activation_bits=spec.activation_bits,
            output_bits=spec.output_bits, dequant=placement if spec.quantized else "none",
            group_size=spec.group_size or 1, macs=macs, elements=0, instances=spec.instances, group=group,
        ))
        lowering = _GemmLowering(self, spec, tiling, op, weights, activations, outputs,
                                 activation_after_op, weight_after_op, mask)
        for instance in range(spec.instances):
            lowering.emit_instance(instance)
        return op

    def add_vector(self, name: str, layer: int, elements: int, ops_per_element: int, bits: int,
                   inputs: Region, outputs: Region, after_op: int, chunk_elements: int,
                   group: OpGroup = "vector") -> int:
        """Append an element-wise op streamed in chunks through the activation buffer."""
        op = len(self.ops)
        self.ops.append(OpInfo(
            name=name, kind="vector", layer=layer, weight_bits=0, activation_bits=bits,
            output_bits=bits, dequant="none", group_size=1, macs=0, elements=elements, group=group,
        ))
        for start in range(0, elements, chunk_elements):
            count = min(chunk_elements, elements - start)
            nbytes = ceil_div(count * bits, 8)
            offset = ceil_div(start * bits, 8)
            token = self._token("activation", inputs.base + offset, nbytes, 0, after_op)
            self.token_uses[token] = 1
            self.steps.append(VectorStep(
                op=op, elements=count, ops_per_element=ops_per_element, in_token=token,
                out_addr=outputs.base + offset, out_bytes=nbytes,
            ))
        return op

    def build(self) -> Program:
        return Program(ops=tuple(self.ops), tokens=tuple(self.tokens), token_uses=tuple(self.token_uses),
                       steps=tuple(self.steps))


class _GemmLowering:
    """Walks one GEMM's tile loops and emits tokens and steps, reusing resident tiles."""

    def __init__(self, builder: ProgramBuilder, spec: GemmSpec, tiling: Tiling, op: int,
                 weights: Region, activations: Region, outputs: Region,
                 activation_after_op: int, weight_after_op: int, mask: CausalMask | None = None) -> None:
        self.b, self.spec, self.t, self.op, self.mask = builder, spec, tiling, op, mask
        self.weights, self.activations, self.outputs = weights, activations, outputs
        self.activation_after_op, self.weight_after_op = activation_after_op, weight_after_op
        # tile-contiguous layout: byte strides of full tiles and of whole tile rows/columns
        self.w_tile_stride = sum(spec.weight_tile_bytes(tiling.kt, tiling.nt))
        self.w_column_stride = sum(spec.weight_tile_bytes(spec.k, tiling.nt))
        self.a_tile_stride = spec.activation_tile_bytes(tiling.mt, tiling.kt)
        self.a_row_stride = spec.activation_tile_bytes(tiling.mt, spec.k)
        self.tile_bytes: dict[tuple[int, int, int, bool], tuple[int, int, int]] = {}

    def _bytes(self, mt: int, nt: int, kt: int, ki: int) -> tuple[int, int, int]:
        """(weight payload, weight scales, activation) bytes of a tile, cached per edge shape."""
        key = (mt, nt, kt, ki == 0)  # only the first K tile can differ in scale count (per-channel)
        cached = self.tile_bytes.get(key)
        if cached is None:
            payload, scales = self.spec.weight_tile_bytes(kt, nt, ki * self.t.kt)
            cached = (payload, scales, self.spec.activation_tile_bytes(mt, kt))
            self.tile_bytes[key] = cached
        return cached

    def _dims(self, index: int, tile: int, total: int) -> int:
        return min(tile, total - index * tile)

    def emit_instance(self, instance: int) -> None:
        s, t = self.spec, self.t
        m_tiles, n_tiles, k_tiles = ceil_div(s.m, t.mt), ceil_div(s.n, t.nt), ceil_div(s.k, t.kt)
        w_base = self.weights.base + instance * (self.weights.nbytes // s.instances)
        a_base = self.activations.base + instance * (self.activations.nbytes // s.instances)
        o_base = self.outputs.base + instance * (self.outputs.nbytes // s.instances)
        # keyed by (tile row or K index, tile index, cut size): a tile cut by the mask is its own token
        resident_w: dict[tuple[int, ...], int] = {}
        resident_a: dict[tuple[int, int, int], int] = {}
        outer, inner = (m_tiles, n_tiles) if t.order == "mnk" else (n_tiles, m_tiles)
        for i in range(outer):
            if t.order == "mnk":
                resident_a.clear()  # activation residency is scoped to one M block
            else:
                resident_w.clear()  # weight residency is scoped to one N block
            for j in range(inner):
                mi, ni = (i, j) if t.order == "mnk" else (j, i)
                self._emit_output_tile(mi, ni, k_tiles, w_base, a_base, o_base, resident_w, resident_a)

    def _emit_output_tile(self, mi: int, ni: int, k_tiles: int, w_base: int, a_base: int, o_base: int,
                          resident_w: dict[tuple[int, ...], int],
                          resident_a: dict[tuple[int, int, int], int]) -> None:
        s, t, b, mask = self.spec, self.t, self.b, self.mask
        mt, nt = self._dims(mi, t.mt, s.m), self._dims(ni, t.nt, s.n)
        k_total = s.k
        if mask is not None:
            visible = mask.visible_keys(mi * t.mt + mt - 1)
            if mask.masked_dim == "n":  # QK^T: key columns past the last visible one are skipped
                if ni * t.nt >= visible:
                    return
                nt = min(nt, visible - ni * t.nt)
            else:  # PV: the reduction stops at the last visible key
                k_total = min(s.k, visible)
                k_tiles = ceil_div(k_total, t.kt)
        out_id = b.next_out_id
        b.next_out_id += 1
        out_bytes = s.output_tile_bytes(mt, nt)
        out_addr = o_base + s.output_tile_bytes(mi * t.mt, s.n) + s.output_tile_bytes(mt, ni * t.nt)
        uses, steps = b.token_uses, b.steps
        for ki in range(k_tiles):
            kt = min(t.kt, k_total - ki * t.kt)
            payload, scales, a_bytes = self._bytes(mt, nt, kt, ki)
            w_token = resident_w.get((ki, ni, nt, kt)) if t.weight_resident else None
            if w_token is None:
                w_offset = self.w_column_stride * ni + self.w_tile_stride * ki
                w_token = b._token("weight", w_base + w_offset, payload, scales, self.weight_after_op)
                if t.weight_resident:
                    resident_w[(ki, ni, nt, kt)] = w_token
            a_token = resident_a.get((mi, ki, kt)) if t.activation_resident else None
            if a_token is None:
                a_offset = self.a_row_stride * mi + self.a_tile_stride * ki
                a_token = b._token("activation", a_base + a_offset, a_bytes, 0, self.activation_after_op)
                if t.activation_resident:
                    resident_a[(mi, ki, kt)] = a_token
            uses[w_token] += 1
            uses[a_token] += 1
            steps.append(TileStep(self.op, mt, nt, kt, w_token, a_token, out_id, ki == 0, ki == k_tiles - 1,
                                  out_addr, out_bytes))
