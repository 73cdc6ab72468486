"""Lower GEMMs and vector ops into a Program: tokens with DRAM addresses, tile steps, releases.

Layout assumption (docs/modelling.md): every tensor is stored tile-contiguous, so each tile is one
contiguous DRAM range (weights are packed offline; producers write outputs in tile order).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache

from mixpe_sim.arch.pe import DequantPlacement
from mixpe_sim.config.models import DramMemoryConfig, HardwareConfig
from mixpe_sim.units import ceil_div
from mixpe_sim.workload.gemm import GemmSpec
from mixpe_sim.workload.program import (
    NO_OP,
    NO_TOKEN,
    TOKEN_BUFFERS,
    OpGroup,
    OpInfo,
    Program,
    RelativeTileStep,
    TileRun,
    TileStep,
    TokenBuffer,
    TokenTable,
    VectorStep,
)
from mixpe_sim.workload.shapes import CausalMask
from mixpe_sim.workload.tiling import Tiling

# Every tensor starts on a boundary of at least 2 MiB (the large-allocation granularity of GPU runtimes,
# e.g. the CUDA caching allocator's 2 MiB segments), rounded up to a multiple of the DRAM's row set
# (row x banks x channels), so every block's tensors meet the banks in the same phase. With 4 KiB,
# consecutive blocks met them in alternating phases and their times alternated by up to 3 %
# (docs/modelling.md "DRAM layout").
LARGE_ALLOCATION_BYTES = 2 * 1024 * 1024


def allocation_alignment_bytes(hw: HardwareConfig) -> int:
    mem = hw.memory
    if not isinstance(mem, DramMemoryConfig):
        return LARGE_ALLOCATION_BYTES
    row_set = mem.row_bytes * mem.banks_per_channel * mem.channels
    return ceil_div(LARGE_ALLOCATION_BYTES, row_set) * row_set


@dataclass(frozen=True, slots=True)
class Region:
    """A tensor's place in DRAM."""

    base: int
    nbytes: int


@dataclass
class ProgramBuilder:
    """Accumulates ops, tokens (as columns) and steps for one program; `build()` freezes them."""

    ops: list[OpInfo] = field(default_factory=list)
    token_buffer: list[TokenBuffer] = field(default_factory=list)
    token_addr: list[int] = field(default_factory=list)
    token_payload: list[int] = field(default_factory=list)
    token_scales: list[int] = field(default_factory=list)
    token_after_op: list[int] = field(default_factory=list)
    token_uses: list[int] = field(default_factory=list)
    load_orders: dict[TokenBuffer, list[int]] = field(
        default_factory=lambda: {buffer: [] for buffer in TOKEN_BUFFERS})
    filled_bytes: dict[TokenBuffer, int] = field(
        default_factory=lambda: dict.fromkeys(TOKEN_BUFFERS, 0))
    scale_bytes: int = 0
    tile_runs: list[TileRun] = field(default_factory=list)
    # absolute steps (fused attention) not yet closed into a run: consecutive ones of one op form one
    open_steps: list[RelativeTileStep] = field(default_factory=list)
    open_op: int = NO_OP
    vector_steps: list[VectorStep] = field(default_factory=list)
    align_bytes: int = LARGE_ALLOCATION_BYTES
    next_addr: int = 0
    next_out_id: int = 0
    # per op, kept as the lowering goes (walking 10^5 steps afterwards costs more than the lowering)
    op_dram_bytes: list[int] = field(default_factory=list)  # loaded by the op's tiles + written back
    op_stores: list[int] = field(default_factory=list)  # results handed to the store DMA

    def charge(self, op: int, dram_bytes: int, stores: int = 0) -> None:
        """Count DRAM bytes an op's tiles load or write and the results it stores."""
        self.op_dram_bytes[op] += dram_bytes
        self.op_stores[op] += stores

    def allocate(self, nbytes: int) -> Region:
        region = Region(self.next_addr, nbytes)
        self.next_addr += ceil_div(max(nbytes, 1), self.align_bytes) * self.align_bytes
        return region

    def add_op(self, info: OpInfo) -> int:
        self.ops.append(info)
        self.op_dram_bytes.append(0)
        self.op_stores.append(0)
        return len(self.ops) - 1

    def new_token(self, buffer: TokenBuffer, addr: int, payload: int, after_op: int) -> int:
        return self._token(buffer, addr, payload, 0, after_op)

    def use(self, token_id: int) -> None:
        self.token_uses[token_id] += 1

    def new_output(self) -> int:
        out_id = self.next_out_id
        self.next_out_id += 1
        return out_id

    def add_tile_step(self, step: TileStep) -> None:
        """One PE-array step at absolute ids and addresses; consecutive steps of an op are one run."""
        if step.op != self.open_op:
            self._close_run()
            self.open_op = step.op
        self.open_steps.append(step[1:])  # type: ignore[arg-type]

    def add_run(self, run: TileRun) -> None:
        self._close_run()
        self.tile_runs.append(run)

    def _close_run(self) -> None:
        if self.open_steps:
            self.tile_runs.append(TileRun(tuple(self.open_steps), self.open_op, 0, 0, 0))
            self.open_steps = []

    def _token(self, buffer: TokenBuffer, addr: int, payload: int, scales: int, after_op: int) -> int:
        token_id = len(self.token_buffer)
        self.token_buffer.append(buffer)
        self.token_addr.append(addr)
        self.token_payload.append(payload)
        self.token_scales.append(scales)
        self.token_after_op.append(after_op)
        self.token_uses.append(0)
        self.load_orders[buffer].append(token_id)
        self.filled_bytes[buffer] += payload
        self.scale_bytes += scales
        return token_id

    def add_gemm(self, spec: GemmSpec, tiling: Tiling, placement: DequantPlacement,
                 weights: Region, activations: Region, outputs: Region,
                 activation_after_op: int = NO_OP, weight_after_op: int = NO_OP,
                 mask: CausalMask | None = None, group: OpGroup = "linear") -> int:
        """Append one GEMM (all its instances). Returns its op index.

        With a causal `mask`, tiles wholly outside the mask are skipped and the last visible tile
        along the key dimension is cut to the last key any of its rows sees (docs/modelling.md).
        """
        macs = spec.macs
        if mask is not None:
            other = spec.k if mask.masked_dim == "n" else spec.n
            macs = mask.visible_products(spec.m) * other * spec.instances
        op = self.add_op(OpInfo(
            name=spec.name, kind="gemm", layer=spec.layer,
            weight_bits=spec.weight_bits, activation_bits=spec.activation_bits,
            output_bits=spec.output_bits, dequant=placement if spec.quantized else "none",
            group_size=spec.group_size or 1, macs=macs, elements=0, instances=spec.instances, group=group,
        ))
        # every instance lowers to the same tiles at other addresses: lower one once (cached across
        # ops, blocks and steps of equal shape) and place a copy per instance
        template = gemm_template(replace(spec, name="", layer=-1), tiling, mask)
        template.place(self, op, weights, activations, outputs, spec.instances, weight_after_op, activation_after_op)
        return op

    def add_vector(self, name: str, layer: int, elements: int, ops_per_element: int, bits: int,
                   inputs: Region, outputs: Region, after_op: int, chunk_elements: int,
                   group: OpGroup = "vector") -> int:
        """Append an element-wise op streamed in chunks through the activation buffer."""
        op = self.add_op(OpInfo(
            name=name, kind="vector", layer=layer, weight_bits=0, activation_bits=bits,
            output_bits=bits, dequant="none", group_size=1, macs=0, elements=elements, group=group,
        ))
        for start in range(0, elements, chunk_elements):
            count = min(chunk_elements, elements - start)
            nbytes = ceil_div(count * bits, 8)
            offset = ceil_div(start * bits, 8)
            token = self._token("activation", inputs.base + offset, nbytes, 0, after_op)
            self.token_uses[token] = 1
            self.vector_steps.append(VectorStep(
                op=op, elements=count, ops_per_element=ops_per_element, in_token=token,
                out_addr=outputs.base + offset, out_bytes=nbytes,
            ))
            self.charge(op, 2 * nbytes, stores=1)
        return op

    def build(self) -> Program:
        self._close_run()
        tokens = TokenTable(tuple(self.token_buffer), tuple(self.token_addr), tuple(self.token_payload),
                            tuple(self.token_scales), tuple(self.token_after_op))
        return Program(ops=tuple(self.ops), tokens=tokens, token_uses=tuple(self.token_uses),
                       tile_runs=tuple(self.tile_runs), vector_steps=tuple(self.vector_steps),
                       load_orders={buffer: tuple(ids) for buffer, ids in self.load_orders.items()},
                       filled_bytes=dict(self.filled_bytes), scale_bytes=self.scale_bytes,
                       op_dram_bytes=tuple(self.op_dram_bytes), op_stores=tuple(self.op_stores))


class _GemmLowering:
    """Walks one GEMM instance's tile loops at address 0 and emits tokens and steps, reusing resident
    tiles (a GemmTemplate is made of its output)."""

    def __init__(self, builder: ProgramBuilder, spec: GemmSpec, tiling: Tiling, op: int,
                 activation_after_op: int, weight_after_op: int, mask: CausalMask | None = None) -> None:
        self.b, self.spec, self.t, self.op, self.mask = builder, spec, tiling, op, mask
        self.activation_after_op, self.weight_after_op = activation_after_op, weight_after_op
        # tile-contiguous layout: byte strides of full tiles and of whole tile rows/columns
        self.w_tile_stride = sum(spec.weight_tile_bytes(tiling.kt, tiling.nt))
        self.w_column_stride = sum(spec.weight_tile_bytes(spec.k, tiling.nt))
        self.a_tile_stride = spec.activation_tile_bytes(tiling.mt, tiling.kt)
        self.a_row_stride = spec.activation_tile_bytes(tiling.mt, spec.k)
        self.tile_bytes: dict[tuple[int, int, int, bool], tuple[int, int, int]] = {}
        self.steps: list[RelativeTileStep] = []

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

    def emit_instance(self) -> None:
        s, t = self.spec, self.t
        m_tiles, n_tiles, k_tiles = ceil_div(s.m, t.mt), ceil_div(s.n, t.nt), ceil_div(s.k, t.kt)
        w_base = a_base = o_base = 0
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
        uses, steps = b.token_uses, self.steps
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
            steps.append((mt, nt, kt, w_token, a_token, out_id, ki == 0, ki == k_tiles - 1, out_addr, out_bytes,
                          NO_TOKEN))


# Stand-ins for the producer ops while lowering a template (real op indices are >= 0, NO_OP is -1).
_WEIGHT_PRODUCER, _ACTIVATION_PRODUCER = -2, -3


@dataclass(frozen=True, slots=True)
class GemmTemplate:
    """One GEMM instance lowered at address 0 with token and output ids from 0: `place` copies it
    into a program at its real addresses, ids and producers (per token and instance only its address
    is computed, the other columns are copied at C speed; the steps are shared whole)."""

    buffer: tuple[TokenBuffer, ...]
    addr: tuple[int, ...]  # relative to its operand's base
    payload: tuple[int, ...]
    scales: tuple[int, ...]
    is_weight: tuple[bool, ...]  # the weight operand's (else the activation's): picks base and producer
    token_uses: tuple[int, ...]
    load_orders: tuple[tuple[TokenBuffer, tuple[int, ...]], ...]  # relative token ids per buffer
    filled_bytes: tuple[tuple[TokenBuffer, int], ...]
    scale_bytes: int
    steps: tuple[RelativeTileStep, ...]
    outputs: int
    dram_bytes: int  # tiles loaded plus results written back
    stores: int

    def place(self, builder: ProgramBuilder, op: int, weights: Region, activations: Region, outputs: Region,
              instances: int, weight_after_op: int, activation_after_op: int) -> None:
        """`instances` copies, instance i at offset i x (region size / instances) in each region."""
        t0, tokens = len(builder.token_buffer), len(self.buffer)
        w_stride, a_stride = weights.nbytes // instances, activations.nbytes // instances
        o_stride = outputs.nbytes // instances
        producers = (activation_after_op, weight_after_op)  # indexed by "weight?"
        builder.token_buffer.extend(self.buffer * instances)
        builder.token_payload.extend(self.payload * instances)
        builder.token_scales.extend(self.scales * instances)
        builder.token_after_op.extend([producers[weight] for weight in self.is_weight] * instances)
        builder.token_uses.extend(self.token_uses * instances)
        relative = tuple(zip(self.addr, self.is_weight, strict=True))
        for instance in range(instances):
            bases = (activations.base + instance * a_stride, weights.base + instance * w_stride)
            builder.token_addr.extend([bases[weight] + addr for addr, weight in relative])
        for buffer, ids in self.load_orders:
            builder.load_orders[buffer].extend([t0 + instance * tokens + token_id
                                                for instance in range(instances) for token_id in ids])
        for buffer, nbytes in self.filled_bytes:
            builder.filled_bytes[buffer] += nbytes * instances
        builder.scale_bytes += self.scale_bytes * instances
        out0 = builder.next_out_id
        for instance in range(instances):
            builder.add_run(TileRun(self.steps, op, t0 + instance * tokens, out0 + instance * self.outputs,
                                    outputs.base + instance * o_stride))
        builder.next_out_id += self.outputs * instances
        builder.charge(op, self.dram_bytes * instances, self.stores * instances)


@lru_cache(maxsize=512)
def gemm_template(spec: GemmSpec, tiling: Tiling, mask: CausalMask | None) -> GemmTemplate:
    """Lower instance 0 of `spec` (name and layer cleared, so equal shapes share one template)."""
    scratch = ProgramBuilder()
    lowering = _GemmLowering(scratch, spec, tiling, 0, _ACTIVATION_PRODUCER, _WEIGHT_PRODUCER, mask)
    lowering.emit_instance()
    stored = [step[9] for step in lowering.steps if step[7]]  # out_bytes of each last K tile
    loaded = sum(scratch.token_payload) + scratch.scale_bytes
    return GemmTemplate(
        buffer=tuple(scratch.token_buffer), addr=tuple(scratch.token_addr), payload=tuple(scratch.token_payload),
        scales=tuple(scratch.token_scales),
        is_weight=tuple(after == _WEIGHT_PRODUCER for after in scratch.token_after_op),
        token_uses=tuple(scratch.token_uses),
        load_orders=tuple((buffer, tuple(ids)) for buffer, ids in scratch.load_orders.items() if ids),
        filled_bytes=tuple(scratch.filled_bytes.items()), scale_bytes=scratch.scale_bytes,
        steps=tuple(lowering.steps), outputs=scratch.next_out_id, dram_bytes=loaded + sum(stored),
        stores=len(stored))
