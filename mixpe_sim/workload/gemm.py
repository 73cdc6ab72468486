"""GEMM shapes and the byte sizes of their tiles (packed low-bit weights plus per-group scale/zero)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from mixpe_sim.config.models import HardwareConfig
from mixpe_sim.errors import WorkloadError
from mixpe_sim.units import BITS_PER_BYTE, ceil_div
from mixpe_sim.workload.models import ModelSpec

UNQUANTIZED_BITS = 16  # tensors kept at FP16: the embedding table, an unquantized LM head


@dataclass(frozen=True, slots=True)
class GemmSpec:
    """Y[M x N] = A[M x K] @ W[K x N], repeated `instances` times on independent data.

    `group_size` > 0 means W is group-quantized along K: every `group_size` consecutive weights of a
    column share one scale (`scale_bits`) and one zero point (`zero_bits`).
    """

    name: str
    m: int
    n: int
    k: int
    weight_bits: int
    activation_bits: int
    output_bits: int
    group_size: int = 0
    scale_bits: int = 16
    zero_bits: int = 16
    instances: int = 1
    layer: int = -1

    def validate(self) -> GemmSpec:
        for dim in ("m", "n", "k", "instances"):
            if getattr(self, dim) <= 0:
                raise WorkloadError(f"{self.name}: {dim} must be positive (got {getattr(self, dim)})")
        if self.group_size and self.k % self.group_size:
            raise WorkloadError(
                f"quant.group_size: group size {self.group_size} does not divide K={self.k} of {self.name} "
                "(choose a group size that divides every weight GEMM's K)"
            )
        return self

    @property
    def quantized(self) -> bool:
        return self.group_size > 0

    def weight_tile_bytes(self, kt: int, nt: int, k0: int = 0) -> tuple[int, int]:
        """(packed weight bytes, scale+zero bytes) of the Kt x Nt weight tile starting at row k0.

        The tile carries the scales of the quantization groups that start inside it, so summing
        over tiles counts every group once (per-channel scaling: one group of K rows).
        """
        payload = ceil_div(kt * nt * self.weight_bits, BITS_PER_BYTE)
        if not self.quantized:
            return payload, 0
        groups = ceil_div(k0 + kt, self.group_size) - ceil_div(k0, self.group_size)
        return payload, ceil_div(groups * nt * (self.scale_bits + self.zero_bits), BITS_PER_BYTE)

    def activation_tile_bytes(self, mt: int, kt: int) -> int:
        return ceil_div(mt * kt * self.activation_bits, BITS_PER_BYTE)

    def output_tile_bytes(self, mt: int, nt: int) -> int:
        return ceil_div(mt * nt * self.output_bits, BITS_PER_BYTE)

    @property
    def weight_bytes(self) -> int:
        payload, scales = self.weight_tile_bytes(self.k, self.n)
        return (payload + scales) * self.instances

    @property
    def activation_bytes(self) -> int:
        return self.activation_tile_bytes(self.m, self.k) * self.instances

    @property
    def output_bytes(self) -> int:
        return self.output_tile_bytes(self.m, self.n) * self.instances

    @property
    def macs(self) -> int:
        return self.m * self.n * self.k * self.instances


def weight_gemm(name: str, m: int, n: int, k: int, hw: HardwareConfig, layer: int = -1,
                weight_bits: int | None = None, activation_bits: int | None = None) -> GemmSpec:
    """A projection GEMM whose weights are stored at the hardware's quantization.

    16-bit weights are not quantized; per-output (per-channel) dequant stores one scale/zero per column.
    """
    q = hw.quant
    w_bits = weight_bits or q.weight_bits
    a_bits = activation_bits or q.activation_bits
    if w_bits >= 16:
        group = 0
    elif hw.dequant.placement == "per_output":
        group = k
    else:
        group = q.group_size
    return GemmSpec(
        name=name, m=m, n=n, k=k,
        weight_bits=w_bits, activation_bits=a_bits, output_bits=q.activation_bits,
        group_size=group, scale_bits=q.scale_bits, zero_bits=q.zero_bits, layer=layer,
    ).validate()


def is_low_precision_block(layer: int, layers: int, fraction: float) -> bool:
    """Spread round(fraction * layers) chosen blocks evenly: block i is chosen when the running
    count floor((i + 1) * fraction) steps up at i."""
    if layer < 0 or layers <= 0:
        return False
    return int((layer + 1) * fraction + 1e-9) > int(layer * fraction + 1e-9)


def precision_for(hw: HardwareConfig, op_name: str, layer: int, layers: int) -> tuple[int, int]:
    """(weight bits, activation bits) of a weight GEMM under the hardware's precision map."""
    q = hw.quant
    low = q.low_precision
    if low is not None and (not low.ops or op_name in low.ops) and \
            is_low_precision_block(layer, layers, low.block_fraction):
        return low.weight_bits, low.activation_bits
    return q.weight_bits, q.activation_bits


def weight_gemms(hw: HardwareConfig, model: ModelSpec, rows: int) -> list[tuple[int, GemmSpec]]:
    """(count, spec) of one forward step's block weight GEMMs at M = rows (they dominate every step;
    attention, vector ops and the LM head are left out of the estimate, not out of the simulation)."""
    h, q, kv, ff = model.hidden, model.q_dim, model.kv_dim, model.intermediate
    shapes = [("qkv_proj", q + 2 * kv, h), ("o_proj", h, q)]
    shapes += [("gate_up_proj", 2 * ff, h), ("down_proj", h, ff)] if model.gated_mlp else \
        [("fc1", ff, h), ("fc2", h, ff)]
    # blocks run at the precisions of the design's mixed-precision map (ANT, BitFusion, OLAccel)
    counts = Counter((name, n, k, *precision_for(hw, name, layer, model.layers))
                     for layer in range(model.layers) for name, n, k in shapes)
    return [(count, weight_gemm(name, rows, n, k, hw, weight_bits=w_bits, activation_bits=a_bits))
            for (name, n, k, w_bits, a_bits), count in sorted(counts.items())]
