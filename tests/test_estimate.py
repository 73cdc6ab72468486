"""The closed-form step estimate the serving model scales (workload/estimate.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixpe_sim import load_hardware, load_model, simulate_gemm
from mixpe_sim.config.models import HardwareConfig
from mixpe_sim.runs.llm import simulate_shape
from mixpe_sim.workload.estimate import StepEstimator, gemm_cycles
from mixpe_sim.workload.gemm import weight_gemm
from mixpe_sim.workload.shapes import SequenceShape, StepShape
from mixpe_sim.workload.tiling import TileBudget, choose_tiling


def _gemm_estimate(hw: HardwareConfig, m: int, n: int, k: int) -> float:
    spec = weight_gemm("g", m, n, k, hw)
    budget = TileBudget.from_hw(hw)
    return gemm_cycles(spec, choose_tiling(spec, budget, hw.dequant.placement), budget, hw.dequant.placement)


@pytest.mark.parametrize("preset", ["dc-mixpe-w4a16", "mixpe-w4a8", "fp16"])
@pytest.mark.parametrize("m, n, k", [(1, 4096, 4096), (65, 4096, 11008), (300, 1000, 768), (7, 12288, 4096)])
def test_gemm_cycles_equal_the_simulation_without_memory_contention(preset: str, m: int, n: int, k: int) -> None:
    """On ideal memory a GEMM's simulated cycles are its tiles' closed-form costs, remainders included."""
    hw = load_hardware(preset, memory="ideal")
    assert simulate_gemm(hw, m, n, k).cycles == round(_gemm_estimate(hw, m, n, k))


@settings(max_examples=20, deadline=None)
@given(m=st.integers(1, 80), n=st.sampled_from([128, 384, 1000, 2048]), k=st.sampled_from([128, 512, 1024]))
def test_gemm_cycles_any_shape(m: int, n: int, k: int) -> None:
    hw = load_hardware("dc-mixpe-w4a16", memory="ideal")
    assert simulate_gemm(hw, m, n, k).cycles == round(_gemm_estimate(hw, m, n, k))


def test_step_estimate_is_rows_plus_attention_per_sequence() -> None:
    hw, model = load_hardware("dc-mixpe-w4a16"), load_model("llama-2-7b")
    est = StepEstimator(hw, model, 16, False)
    sequences = (SequenceShape(1, 299), SequenceShape(1, 99), SequenceShape(64, 0), SequenceShape(32, 64, False))
    shape = StepShape(sequences, 16, 16, False)
    total = est.estimate(shape)
    parts = est.rows_estimate(shape.tokens, shape.logit_rows)
    for s in sequences:
        parts = parts + est.attention_estimate(s.new_tokens, s.context_before)
    assert total.cycles == pytest.approx(parts.cycles) and total.dram_bytes == pytest.approx(parts.dram_bytes)


def test_step_estimate_tracks_the_simulation() -> None:
    """What the simulation adds to the estimate (DRAM efficiency, op boundaries) is a few percent."""
    hw, model = load_hardware("dc-mixpe-w4a16"), load_model("llama-2-7b")
    est = StepEstimator(hw, model, 16, False)
    for sequences in ((SequenceShape(1, 511),) * 4, (SequenceShape(128, 0),)):
        shape = StepShape(sequences, 16, 16, False)
        simulated_ps = simulate_shape(hw, model, shape, False).tally["time_ps"]
        estimated_ps = est.estimate(shape).cycles * 1e12 / hw.core_freq_hz
        assert 0.98 < simulated_ps / estimated_ps < 1.08
