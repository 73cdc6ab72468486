"""Numerical model of the MixPE arithmetic (numpy), to check that the hardware tricks are exact.

* INT4 x INT8 by shift-add: the product is the sum of the activation shifted by each set weight bit
  (two's complement: the top bit of a signed nibble weighs -8).
* INT4 x FP16 by exponent add: each set bit i of |w| contributes x * 2^i, which in floating point is
  an add of i to x's exponent (exact while it does not overflow); the terms are summed in FP16 and
  the sign of w is applied last.
* Per-group dequant: with scale s_g and zero point z_g shared by a group g of K,
  y = sum_g s_g * (sum_{j in g} q_j x_j) - s_g * z_g * sum_{j in g} x_j, which equals the GEMM with
  dequantized weights s_g * (q_j - z_g) up to floating-point reassociation.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

INT4_SIGNED = np.arange(-8, 8, dtype=np.int64)
INT4_UNSIGNED = np.arange(0, 16, dtype=np.int64)


def _bits(weight: NDArray[np.int64]) -> NDArray[np.int64]:
    return np.asarray(weight, dtype=np.int64) & 0xF  # the stored nibble


def shift_add_int4_int8(weight: NDArray[np.int64], activation: NDArray[np.int64],
                        signed: bool = True) -> NDArray[np.int64]:
    """INT4 x INT8 the way the MixPE PE does it: shifted copies of the activation, added."""
    nibble = _bits(weight)
    x = np.asarray(activation, dtype=np.int64)
    acc = np.zeros(np.broadcast(nibble, x).shape, dtype=np.int64)
    for bit in range(4):
        term = ((nibble >> bit) & 1) * (x << bit)
        acc = acc - term if (signed and bit == 3) else acc + term
    return acc


def exponent_add_int4_fp16(weight: NDArray[np.int64], activation: NDArray[np.float16]) -> NDArray[np.float16]:
    """INT4 x FP16: x * 2^i per set bit of |w| (an exponent add, exact in FP16), accumulated in FP16,
    then the sign of w applied (exact). Sign-magnitude avoids the cancellation a two's-complement
    sum would suffer in floating point (w = -1 as 7x - 8x)."""
    w = np.asarray(weight, dtype=np.int64)
    magnitude = np.abs(w)
    x = np.asarray(activation, dtype=np.float16)
    acc = np.zeros(np.broadcast(magnitude, x).shape, dtype=np.float16)
    for bit in range(4):
        shifted = np.ldexp(x, np.int32(bit)).astype(np.float16)
        acc = (acc + np.where((magnitude >> bit) & 1, shifted, np.float16(0))).astype(np.float16)
    return np.where(w < 0, -acc, acc).astype(np.float16)


def dequant_first_gemm(x: NDArray[np.float64], q: NDArray[np.int64], scales: NDArray[np.float64],
                       zeros: NDArray[np.float64], group: int) -> NDArray[np.float64]:
    """Baseline: dequantize every weight, then multiply. q is K x N, scales/zeros are (K/group) x N."""
    weights = (q - np.repeat(zeros, group, axis=0)) * np.repeat(scales, group, axis=0)
    return np.asarray(x, dtype=np.float64) @ weights


def per_group_gemm(x: NDArray[np.float64], q: NDArray[np.int64], scales: NDArray[np.float64],
                   zeros: NDArray[np.float64], group: int) -> NDArray[np.float64]:
    """MixPE: integer/shift-add group dot products, then one scale and one zero correction per group."""
    m, k = x.shape
    n = q.shape[1]
    groups = k // group
    xg = np.asarray(x, dtype=np.float64).reshape(m, groups, group)
    qg = q.reshape(groups, group, n)
    group_dots = np.einsum("mgj,gjn->mgn", xg, qg)  # the low-bit main loop, no dequant inside
    group_sums = xg.sum(axis=2)  # sum of activations per group, shared by all N columns
    return np.einsum("mgn,gn->mn", group_dots, scales) - np.einsum("mg,gn->mn", group_sums, scales * zeros)


def per_group_dequant_ops(m: int, n: int, k: int, group: int) -> int:
    """One scale-and-correct per output element per group: M*N*K/g."""
    return m * n * (k // group)


def per_weight_dequant_ops(n: int, k: int, weight_passes: int) -> int:
    """Every weight dequantized each time it streams into the array: N*K per pass."""
    return n * k * weight_passes
