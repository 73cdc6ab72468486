"""The engine on one mpGEMM: rooflines, byte conservation, closed-form cycles, determinism."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixpe_sim.arch.pe import parallelism
from mixpe_sim.runs.gemm import compile_gemm, run_gemm
from mixpe_sim.units import ceil_div
from mixpe_sim.workload.gemm import weight_gemm
from mixpe_sim.workload.program import TileStep
from tests.conftest import hw_with

MIB = 1 << 20
BIG_BUFFERS = {
    "buffers.weight.capacity_bytes": 64 * MIB,
    "buffers.activation.capacity_bytes": 64 * MIB,
    "buffers.output.capacity_bytes": 64 * MIB,
}
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
shapes = st.tuples(
    st.integers(1, 300),  # M
    st.integers(1, 1500),  # N
    st.integers(1, 12).map(lambda groups: groups * 128),  # K, whole groups of 128
)


def roofline_s(hw, m: int, n: int, k: int) -> tuple[float, float]:
    spec = weight_gemm("g", m, n, k, hw)
    par = parallelism(hw.pe.kind, spec.weight_bits, spec.activation_bits)
    compute = spec.macs / (hw.array.rows * hw.array.cols * par.macs_per_pe_cycle) / hw.core_freq_hz
    memory = (spec.weight_bytes + spec.activation_bytes) / hw.memory.peak_bw_bytes_per_s
    return compute, memory


@SETTINGS
@given(shape=shapes)
def test_time_never_beats_the_roofline(shape: tuple[int, int, int]) -> None:
    for hw in (hw_with(), hw_with("fp16"), hw_with(memory="ddr4-3200")):
        m, n, k = shape
        result = run_gemm(hw, m, n, k)
        compute_s, memory_s = roofline_s(hw, m, n, k)
        assert result["time_s"] >= max(compute_s, memory_s) * (1 - 1e-9)


@SETTINGS
@given(shape=shapes)
def test_dram_reads_at_least_compulsory_and_writes_exact(shape: tuple[int, int, int]) -> None:
    hw = hw_with()
    m, n, k = shape
    spec = weight_gemm("g", m, n, k, hw)
    result = run_gemm(hw, m, n, k)
    assert result["dram_bytes_read"] >= spec.weight_bytes + spec.activation_bytes
    assert result["dram_bytes_written"] == spec.output_bytes
    assert result["macs"] == m * n * k


def test_dram_reads_exactly_compulsory_when_everything_fits() -> None:
    hw = hw_with(**BIG_BUFFERS)
    m, n, k = 64, 1024, 1024
    spec = weight_gemm("g", m, n, k, hw)
    # weights: K*N INT4 + (K/g)*N*(scale+zero bits)/8; activations: M*K FP16
    assert spec.weight_bytes == k * n // 2 + (k // 128) * n * 4
    assert spec.activation_bytes == m * k * 2
    result = run_gemm(hw, m, n, k)
    assert result["dram_bytes_read"] == spec.weight_bytes + spec.activation_bytes


def expected_ideal_cycles(hw, steps: list[TileStep]) -> int:
    """BRIEF section 6 formula per tile, fill/drain (rows + cols - 2) once per output tile."""
    rows, cols = hw.array.rows, hw.array.cols
    par = parallelism(hw.pe.kind, hw.quant.weight_bits, hw.quant.activation_bits)
    total = 0
    for s in steps:
        total += ceil_div(s.mt, rows * par.pf_a) * ceil_div(s.nt, cols * par.pf_w) * s.kt
        if s.last_k:
            total += rows + cols - 2
    return total


@pytest.mark.parametrize("hw_name", ["mixpe-w4a16", "fp16"])
def test_single_tile_matches_closed_form_exactly(hw_name: str) -> None:
    hw = hw_with(hw_name, memory="ideal", **BIG_BUFFERS)
    rows, cols = hw.array.rows, hw.array.cols
    pf_w = parallelism(hw.pe.kind, 4, 16).pf_w
    m, n, k = 64, 512, 256
    result = run_gemm(hw, m, n, k)
    assert result["tiling"] == {**result["tiling"], "mt": m, "nt": n, "kt": k}
    assert result["cycles"] == ceil_div(m, rows) * ceil_div(n, cols * pf_w) * k + rows + cols - 2


@SETTINGS
@given(shape=st.tuples(st.integers(32, 256), st.integers(1, 2048), st.integers(1, 16).map(lambda g: g * 128)))
def test_contention_free_time_is_the_sum_of_closed_form_tiles(shape: tuple[int, int, int]) -> None:
    """Ideal memory, ports wide enough: the array never waits, so time = sum of tile formulas."""
    hw = hw_with(memory="ideal", **{"buffers.weight.port_bytes_per_cycle": 1 << 20,
                                    "buffers.activation.port_bytes_per_cycle": 1 << 20})
    m, n, k = shape  # M >= rows: the K-split mapping for small M does not apply
    program, _ = compile_gemm(hw, m, n, k)
    steps = [s for s in program.steps if isinstance(s, TileStep)]
    result = run_gemm(hw, m, n, k)
    assert result["cycles"] == expected_ideal_cycles(hw, steps)
    assert result["stall_cycles"] == 0


def test_tiles_cover_every_output_exactly_once() -> None:
    hw = hw_with()
    m, n, k = 200, 1000, 640
    program, _ = compile_gemm(hw, m, n, k)
    covered: dict[int, int] = {}
    per_output: dict[int, int] = {}
    for s in program.steps:
        assert isinstance(s, TileStep)
        per_output[s.out_id] = per_output.get(s.out_id, 0) + s.kt
        if s.last_k:
            covered[s.out_id] = s.mt * s.nt
    assert sum(covered.values()) == m * n
    assert all(depth == k for depth in per_output.values())
    assert sum(s.mt * s.nt * s.kt for s in program.steps) == m * n * k


def test_cycles_monotone_in_k() -> None:
    hw = hw_with()
    previous = 0
    for groups in (1, 2, 4, 8, 16, 32):
        cycles = run_gemm(hw, 64, 1024, groups * 128)["cycles"]
        assert cycles > previous
        previous = cycles


def test_results_are_deterministic() -> None:
    hw = hw_with(memory="ddr4-3200")
    first = run_gemm(hw, 96, 1536, 1024)
    second = run_gemm(hw, 96, 1536, 1024)
    for result in (first, second):
        result.pop("wall_s")
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)


def test_time_splits_into_compute_plus_stalls() -> None:
    hw = hw_with(memory="ddr4-3200")
    result = run_gemm(hw, 64, 4096, 4096)
    assert result["compute_s"] == pytest.approx(result["compute_cycles"] / hw.core_freq_hz, rel=1e-9)
    assert math.isclose(result["compute_s"] + sum(result["stall_breakdown_s"].values()), result["time_s"],
                        rel_tol=1e-9)


def test_mixpe_dequant_is_per_group_and_baseline_per_weight_pass() -> None:
    m, n, k = 64, 1024, 1024
    mixpe = run_gemm(hw_with(), m, n, k)
    assert mixpe["dequant_ops"] == m * n * k // 128
    fp16 = hw_with("fp16")
    result = run_gemm(fp16, m, n, k)
    passes = ceil_div(min(m, result["tiling"]["mt"]), fp16.array.rows) * ceil_div(m, result["tiling"]["mt"])
    assert result["dequant_ops"] == n * k * passes


def test_decode_gemv_uses_idle_rows_for_k_slices() -> None:
    split = run_gemm(hw_with(memory="ideal", **{"array.k_split_small_m": True}), 1, 4096, 4096)
    strict = run_gemm(hw_with(memory="ideal"), 1, 4096, 4096)
    assert split["cycles"] < strict["cycles"] / 3
    # with the rows busy, the weight SRAM port (256 B/cycle) becomes the limit: 8 MiB / 256 B
    assert split["cycles"] >= (4096 * 4096 // 2) // 256
    assert split["macs"] == strict["macs"] and split["dequant_ops"] == strict["dequant_ops"]


@pytest.mark.parametrize("preset", ["mixpe-w4a16", "mixpe-w4a8", "fp16", "int8"])
def test_paper_presets_follow_the_output_stationary_closed_form_at_m1(preset: str) -> None:
    """The paper's arrays have no K-split: M = 1 uses one array row, and every output tile pays
    ceil(Nt / (cols * pf_w)) * K cycles plus fill/drain (rows + cols - 2), nothing else."""
    hw = hw_with(preset, memory="ideal")
    assert not hw.array.k_split_small_m
    n, k = 2048, 4096
    result = run_gemm(hw, 1, n, k)
    par = parallelism(hw.pe.kind, hw.quant.weight_bits, hw.quant.activation_bits)
    nt = result["tiling"]["nt"]
    full, rest = divmod(n, nt)  # the output tiles: `full` of Nt columns and maybe one remainder
    def per_tile(cols: int) -> int:
        return ceil_div(cols, hw.array.cols * par.pf_w) * k + hw.array.rows + hw.array.cols - 2
    assert result["compute_cycles"] == full * per_tile(nt) + (per_tile(rest) if rest else 0)
    assert result["cycles"] == result["compute_cycles"]  # ideal memory, nothing overlapped binds
