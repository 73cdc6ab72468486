"""The paper comparison: normalization, energy bookkeeping, ordering sanity, precision maps."""

from __future__ import annotations

import pytest

from mixpe_sim.arch.pe import parallelism
from mixpe_sim.config import load_hardware
from mixpe_sim.runs.compare import run_compare
from mixpe_sim.runs.gemm import run_gemm
from mixpe_sim.runs.llm import Workload, run_step
from mixpe_sim.workload.gemm import is_low_precision_block, precision_for
from mixpe_sim.workload.models import load_model

PAPER_WL = Workload()


@pytest.fixture(scope="module")
def vit_b_comparison() -> dict:
    hardware = ["mixpe-w4a16", "mixpe-w4a8", "fp16", "int8", "bitfusion", "ant", "olaccel"]
    return run_compare(hardware, ["paper-vit-b"], PAPER_WL)


def test_reference_normalizes_to_exactly_one(vit_b_comparison: dict) -> None:
    ref = [r for r in vit_b_comparison["rows"] if r["hw"] == vit_b_comparison["reference"]]
    assert vit_b_comparison["reference"] == "fp16"
    assert all(r["norm_time"] == 1.0 and r["norm_energy"] == 1.0 for r in ref)
    assert vit_b_comparison["mean"]["fp16"]["norm_time"] == 1.0


def test_energy_totals_equal_the_breakdown(vit_b_comparison: dict) -> None:
    for row in vit_b_comparison["rows"]:
        assert set(row["energy_breakdown_j"]) == {"dram_static", "dram", "buffer", "core"}
        assert row["energy_j"] == pytest.approx(sum(row["energy_breakdown_j"].values()), rel=1e-12)


def test_ordering_sanity_on_the_paper_setup(vit_b_comparison: dict) -> None:
    t = {r["hw"]: r["time_s"] for r in vit_b_comparison["rows"]}
    e = {r["hw"]: r["energy_j"] for r in vit_b_comparison["rows"]}
    assert t["mixpe-w4a8"] < t["int8"] and t["mixpe-w4a16"] < t["fp16"]
    assert t["mixpe-w4a8"] < min(t["ant"], t["bitfusion"], t["olaccel"])
    assert e["mixpe-w4a8"] < e["int8"] and e["mixpe-w4a16"] < e["fp16"]
    assert t["olaccel"] < t["ant"] < t["bitfusion"]  # more of the model at 4 bit -> faster


def test_compute_bound_speedup_is_the_mac_rate_ratio() -> None:
    """On an ideal memory, MixPE-W4A16 over FP16 is (1024 PEs x 4 MACs) / (896 PEs x 1 MAC)."""
    ideal = {"memory": "ideal"}
    mixpe = run_gemm(load_hardware("mixpe-w4a16", **ideal), 64, 4096, 4096)
    fp16 = run_gemm(load_hardware("fp16", **ideal), 64, 4096, 4096)
    ratio = (32 * 32 * 4) / (32 * 28 * 1)
    assert fp16["cycles"] / mixpe["cycles"] == pytest.approx(ratio, rel=0.02)


@pytest.mark.parametrize("kind, w, a, macs", [("mixpe", 4, 16, 4), ("mixpe", 4, 8, 4), ("fp16", 4, 16, 1),
                                              ("int8", 4, 8, 1), ("bitfusion", 8, 8, 1), ("bitfusion", 4, 4, 4),
                                              ("ant", 4, 4, 4), ("ant", 8, 8, 1), ("olaccel", 4, 4, 4)])
def test_macs_per_pe_per_cycle_match_the_paper_setup(kind: str, w: int, a: int, macs: int) -> None:
    assert parallelism(kind, w, a).macs_per_pe_cycle == macs


def test_precision_maps_select_the_documented_fractions() -> None:
    ant, bitfusion = load_hardware("ant"), load_hardware("bitfusion")
    layers = 40
    ant_low = sum(precision_for(ant, "fc1", i, layers) == (4, 4) for i in range(layers))
    assert ant_low == 32  # 80 %
    bf_low_o = sum(precision_for(bitfusion, "o_proj", i, layers) == (4, 4) for i in range(layers))
    bf_low_fc = sum(precision_for(bitfusion, "fc1", i, layers) == (4, 4) for i in range(layers))
    assert (bf_low_o, bf_low_fc) == (20, 0)
    picked = [i for i in range(10) if is_low_precision_block(i, 10, 0.5)]
    assert picked == [1, 3, 5, 7, 9]  # spread evenly, not bunched at the front


def test_mixed_precision_default_mode_matches_exact() -> None:
    hw = load_hardware("ant")
    model = load_model("paper-vit-b")
    fast = run_step(hw, model, PAPER_WL, "prefill", 64, exact=False)
    exact = run_step(hw, model, PAPER_WL, "prefill", 64, exact=True)
    assert fast["mode"]["block_extrapolation"]
    assert fast["step_s"] == pytest.approx(exact["step_s"], rel=0.01)
    assert fast["energy_j"] == pytest.approx(exact["energy_j"], rel=0.01)


def test_per_output_dequant_counts_one_rescale_per_output() -> None:
    result = run_gemm(load_hardware("olaccel"), 64, 1024, 1024)
    assert result["dequant_ops"] == 64 * 1024
