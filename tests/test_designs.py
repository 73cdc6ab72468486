"""Priced, balanced designs: area sums, priced knobs, iso-area sizing, what binds each phase."""

from __future__ import annotations

import math

import pytest

from mixpe_sim.arch.area import area_breakdown_mm2, sram_macros, total_area_mm2
from mixpe_sim.config import load_hardware
from mixpe_sim.config.presets import list_presets
from mixpe_sim.errors import ConfigError
from mixpe_sim.report.bottleneck import bottleneck
from mixpe_sim.runs.gemm import run_gemm
from mixpe_sim.runs.llm import Workload, run_step
from mixpe_sim.runs.sizing import ISO_AREA_TOLERANCE, size_to_area
from mixpe_sim.workload.models import load_model
from tests.conftest import DATA, hw_with

PAPER = ("mixpe-w4a16", "mixpe-w4a8", "fp16", "int8", "bitfusion", "ant", "olaccel")
TINY = str(DATA / "tiny-llama.json")


@pytest.mark.parametrize("preset", list_presets("hardware"))
def test_area_breakdown_sums_to_the_total_and_every_part_is_positive(preset: str) -> None:
    hw = load_hardware(preset)
    parts = area_breakdown_mm2(hw)
    assert math.isclose(sum(parts.values()), total_area_mm2(hw), rel_tol=1e-12)
    assert all(v >= 0 for v in parts.values()) and parts["pe_array"] > 0
    assert (parts["k_split_reduce"] > 0) == hw.array.k_split_small_m


def test_paper_iso_area_arrays_have_equal_pe_array_area() -> None:
    """The paper's iso-area groups: MixPE-W4A16 32x32 = FP16 32x28; INT8 = BitFusion = MixPE-W4A8."""
    arrays = {name: area_breakdown_mm2(load_hardware(name))["pe_array"] for name in PAPER}
    assert math.isclose(arrays["mixpe-w4a16"], arrays["fp16"], rel_tol=0.01)
    for name in ("mixpe-w4a8", "bitfusion", "ant", "olaccel"):
        assert math.isclose(arrays[name], arrays["int8"], rel_tol=0.01), name


def test_paper_presets_are_the_papers_hardware_without_k_split() -> None:
    for name in PAPER:
        assert not load_hardware(name).array.k_split_small_m, name


@pytest.mark.parametrize("key, value", [("array.k_split_small_m", True), ("dequant.lanes", 64),
                                        ("vector.lanes", 128), ("buffers.weight.port_bytes_per_cycle", 8192),
                                        ("buffers.weight.capacity_bytes", 262144)])
def test_every_knob_that_buys_speed_costs_area(key: str, value: object) -> None:
    assert total_area_mm2(hw_with(**{key: value})) > total_area_mm2(hw_with())


def test_a_port_costs_area_only_beyond_the_banking_its_capacity_already_gives() -> None:
    hw = hw_with()
    macro = hw.area.sram_macro["weight"]
    by_capacity = hw.buffers.weight.capacity_bytes // macro.capacity_bytes
    assert sram_macros(hw.buffers.weight, macro) == by_capacity
    wide = hw.buffers.weight.model_copy(update={"port_bytes_per_cycle": 2 * by_capacity * macro.width_bits // 8})
    assert sram_macros(wide, macro) == 2 * by_capacity


def test_k_split_is_priced_in_energy_per_add() -> None:
    strict = run_gemm(hw_with(memory="ideal"), 1, 2048, 2048)
    split = run_gemm(hw_with(memory="ideal", **{"array.k_split_small_m": True}), 1, 2048, 2048)
    assert split["time_s"] < strict["time_s"]
    assert split["area_mm2"] > strict["area_mm2"]
    hw = hw_with(memory="ideal", **{"array.k_split_small_m": True})
    split_dynamic = split["energy_breakdown_j"]["core"] - hw.energy.pe["pe_16x8"].leakage_pj_per_pe_cycle * \
        hw.array.rows * hw.array.cols * split["cycles"] * 1e-12
    strict_dynamic = strict["energy_breakdown_j"]["core"] - hw.energy.pe["pe_16x8"].leakage_pj_per_pe_cycle * \
        hw.array.rows * hw.array.cols * strict["cycles"] * 1e-12
    assert split_dynamic > strict_dynamic  # the reduction adds cost energy beyond the same MACs


@pytest.mark.parametrize("baseline", ["fp16", "int8", "mixpe-w4a8", "bitfusion"])
def test_iso_area_sizing_lands_within_five_percent(baseline: str) -> None:
    target = total_area_mm2(load_hardware("mixpe-w4a16"))
    sized = size_to_area(load_hardware(baseline), target, load_model(TINY), 64)
    assert abs(total_area_mm2(sized.hw) / target - 1) <= ISO_AREA_TOLERANCE
    assert sized.hw.name == f"{baseline}-iso" and sized.candidates > 1


def test_an_area_no_configuration_can_meet_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="fits"):
        size_to_area(load_hardware("fp16"), 0.5, load_model(TINY), 64)


@pytest.mark.parametrize("family", ["dc", "edge"])
def test_each_family_is_at_equal_area(family: str) -> None:
    areas = {k: total_area_mm2(load_hardware(f"{family}-{k}")) for k in ("mixpe-w4a16", "mixpe-w4a8", "fp16", "int8")}
    assert max(areas.values()) / min(areas.values()) <= 1 + 2 * ISO_AREA_TOLERANCE, areas
    ref = areas["mixpe-w4a16"]
    assert all(abs(a / ref - 1) <= ISO_AREA_TOLERANCE for a in areas.values()), areas


def test_dc_decode_is_memory_bound_and_faster_with_every_faster_memory() -> None:
    """Batch-1 LLaMA-2-7B decode (context 2048) on dc-mixpe-w4a16 is bound by the memory on every DRAM
    preset, at >= 0.85 of its peak; its step time falls as peak bandwidth rises (docs/designs.md)."""
    model = load_model("llama-2-7b")
    times = {}
    for memory in ("ddr4-3200", "lpddr5-6400", "gddr6", "hbm2e", "hbm3"):
        hw = hw_with("dc-mixpe-w4a16", memory=memory)
        r = run_step(hw, model, Workload(prompt=2047, gen=2), "decode", 2048, exact=False)
        bound = r["bottleneck"]["decode"]
        assert bound["resource"] == "dram", (memory, bound["summary"])
        assert r["dram_bw_utilization"] >= 0.85, (memory, r["dram_bw_utilization"])
        times[hw.memory.peak_bw_bytes_per_s] = r["step_s"]
    ordered = [times[bw] for bw in sorted(times)]
    assert ordered == sorted(ordered, reverse=True)


def test_a_narrow_port_in_front_of_a_fast_memory_is_named_and_warned_about() -> None:
    hw = hw_with(memory="hbm3", **{"array.k_split_small_m": True})
    r = run_step(hw, load_model("llama-2-7b"), Workload(prompt=511, gen=2), "decode", 512, exact=False)
    bound = r["bottleneck"]["decode"]
    assert bound["resource"] == "weight_port"
    assert "128 GB/s < memory 819 GB/s" in bound["summary"] and bound["warning"]


def test_utilizations_are_fractions_of_each_resource() -> None:
    r = run_gemm(hw_with(), 64, 1024, 1024)
    use = r["bottleneck"]["utilizations"]
    assert all(0 <= v <= 1.0 + 1e-9 for v in use.values()), use
    assert r["bottleneck"]["resource"] == max(use, key=use.get)
    assert bottleneck(hw_with(), {"time_ps": 0})["utilization"] == 0.0
