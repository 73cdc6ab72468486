"""The arithmetic behind MixPE is exact: shift-add, exponent add, per-group dequant."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mixpe_sim.functional import (
    INT4_SIGNED,
    INT4_UNSIGNED,
    dequant_first_gemm,
    exponent_add_int4_fp16,
    per_group_gemm,
    shift_add_int4_int8,
)

INT8 = np.arange(-128, 128, dtype=np.int64)


def test_shift_add_equals_integer_product_for_every_int4_int8_pair() -> None:
    w, x = np.meshgrid(INT4_SIGNED, INT8, indexing="ij")
    assert np.array_equal(shift_add_int4_int8(w, x), w * x)
    wu, xu = np.meshgrid(INT4_UNSIGNED, INT8, indexing="ij")
    assert np.array_equal(shift_add_int4_int8(wu, xu, signed=False), wu * xu)


def test_exponent_add_matches_fp16_product_within_fp16_rounding() -> None:
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(4096) * 100).astype(np.float16)
    for w in INT4_SIGNED:
        got = exponent_add_int4_fp16(np.full(x.shape, w), x).astype(np.float64)
        exact = w * x.astype(np.float64)
        ulp = np.spacing(np.abs(exact).astype(np.float16)).astype(np.float64)
        assert np.all(np.abs(got - exact) <= ulp), int(w)  # at most one FP16 rounding step


def test_exponent_add_of_powers_of_two_is_exact() -> None:
    x = np.array([1.5, -3.25, 1000.0, 6.1e-5], dtype=np.float16)
    for w in (1, 2, 4):
        assert np.array_equal(exponent_add_int4_fp16(np.full(x.shape, w), x), (x * w).astype(np.float16))


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 6), n=st.integers(1, 12), groups=st.integers(1, 6),
       group=st.sampled_from([4, 8, 32, 64, 128]), seed=st.integers(0, 2**31 - 1))
def test_per_group_dequant_equals_dequant_first(m: int, n: int, groups: int, group: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = groups * group
    q = rng.integers(0, 16, size=(k, n))
    scales = rng.uniform(0.001, 0.1, size=(groups, n))
    zeros = rng.integers(0, 16, size=(groups, n)).astype(np.float64)
    x = rng.standard_normal((m, k))
    expected = dequant_first_gemm(x, q, scales, zeros, group)
    assert np.allclose(per_group_gemm(x, q, scales, zeros, group), expected, rtol=1e-9, atol=1e-9)


@settings(max_examples=30, deadline=None)
@given(m=st.integers(1, 4), n=st.integers(1, 8), groups=st.integers(1, 4), seed=st.integers(0, 2**31 - 1))
def test_w4a8_group_dot_products_are_exact_integers(m: int, n: int, groups: int, seed: int) -> None:
    """With INT8 activations the main loop is pure integer arithmetic done by shift-add."""
    rng = np.random.default_rng(seed)
    group = 128
    q = rng.integers(0, 16, size=(groups * group, n))
    x = rng.integers(-128, 128, size=(m, groups * group))
    via_shift_add = shift_add_int4_int8(q[None, :, :], x[:, :, None], signed=False)
    dots = via_shift_add.reshape(m, groups, group, n).sum(axis=2)
    expected = np.einsum("mgj,gjn->mgn", x.reshape(m, groups, group), q.reshape(groups, group, n))
    assert np.array_equal(dots, expected)
