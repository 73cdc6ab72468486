"""End-to-end LLM latency: bounds from first principles, trends, GQA, MAC counts, default vs exact."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from mixpe_sim.runs.llm import Workload, run_request, run_step, sample_points
from mixpe_sim.workload.compile import compile_step
from mixpe_sim.workload.gemm import weight_gemm
from mixpe_sim.workload.graph import forward_graph
from mixpe_sim.workload.models import ModelSpec, load_model, parse_model
from mixpe_sim.workload.shapes import StepShape
from tests.conftest import DATA, hw_with

TINY = str(DATA / "tiny-llama.json")


def tiny_variant(**changes: int) -> ModelSpec:
    data = json.loads(Path(TINY).read_text())
    data.update(changes)
    return parse_model(data, name="tiny-variant", source="test")


def analytic_step_macs(model: ModelSpec, batch: int, seq: int, context: int) -> int:
    rows = batch * seq
    h, q, kv, inter = model.hidden, model.q_dim, model.kv_dim, model.intermediate
    ffn = 3 * h * inter if model.gated_mlp else 2 * h * inter
    before = context - seq  # causal: new token t sees before + t + 1 keys
    visible = seq * before + seq * (seq + 1) // 2
    per_layer = rows * (h * (q + 2 * kv) + q * h + ffn) + 2 * batch * model.heads * visible * model.head_dim
    return model.layers * per_layer + batch * h * model.vocab


def model_weight_bytes(hw, model: ModelSpec) -> int:
    h, q, kv, inter = model.hidden, model.q_dim, model.kv_dim, model.intermediate
    shapes = [(h, q + 2 * kv), (q, h), (h, 2 * inter if model.gated_mlp else inter),
              (inter, h)]
    per_layer = sum(weight_gemm("w", 1, n, k, hw).weight_bytes for k, n in shapes)
    return model.layers * per_layer + model.vocab * h * 2  # LM head kept in FP16


@pytest.mark.parametrize("name", ["llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3-8b", "mistral-7b",
                                  "opt-6.7b"])
def test_shipped_models_parse_with_known_shapes(name: str) -> None:
    m = load_model(name)
    expected = {"llama-2-7b": (4096, 32, 32, 11008), "llama-2-13b": (5120, 40, 40, 13824),
                "llama-2-70b": (8192, 80, 8, 28672), "llama-3-8b": (4096, 32, 8, 14336),
                "mistral-7b": (4096, 32, 8, 14336), "opt-6.7b": (4096, 32, 32, 16384)}[name]
    assert (m.hidden, m.layers, m.kv_heads, m.intermediate) == expected
    assert m.gated_mlp == (name != "opt-6.7b")


@pytest.mark.parametrize("name, phase, context", [("llama-2-7b", "decode", 300), ("opt-6.7b", "prefill", 64),
                                                  ("llama-3-8b", "decode", 100)])
def test_per_step_macs_equal_the_analytic_count(name: str, phase: str, context: int) -> None:
    hw = hw_with()
    model = load_model(name)
    seq = context if phase == "prefill" else 1
    program = compile_step(model, hw, StepShape.uniform(phase, 2, seq, context, 16, 16, False))
    assert sum(op.macs for op in program.ops) == analytic_step_macs(model, 2, seq, context)


def test_graph_is_a_checked_dag_in_forward_order() -> None:
    import networkx as nx

    model = load_model("llama-3-8b")
    graph = forward_graph(model, StepShape.uniform("decode", 1, 1, 16, 16, 16, False), layers=[0, 1])
    assert nx.is_directed_acyclic_graph(graph)
    assert next(iter(nx.topological_sort(graph))) == "embed"
    assert graph.has_edge("L0.qkv_proj", "L0.rope") and graph.has_edge("L0.rope", "L0.qk")


def test_decode_tpot_respects_the_dram_bound() -> None:
    hw = hw_with("dc-mixpe-w4a16", memory="flat")
    model = load_model("llama-2-7b")
    context = 1024
    result = run_step(hw, model, Workload(prompt=context - 1, gen=2), "decode", context, exact=False)
    kv_bytes = model.layers * 2 * model.kv_dim * context * 2
    bound = (model_weight_bytes(hw, model) + kv_bytes) / hw.memory.peak_bw_bytes_per_s
    assert result["step_s"] >= bound
    assert result["dram_bytes_read"] >= model_weight_bytes(hw, model) + kv_bytes
    assert result["step_s"] < 1.3 * bound  # and it is close to it: decode is memory-bound
    assert result["dram_bw_utilization"] > 0.85


def test_prefill_is_compute_bound_and_decode_memory_bound_on_the_datacenter_preset() -> None:
    hw = hw_with("dc-mixpe-w4a16", memory="ddr5-4800")
    model = load_model("llama-2-7b")
    prefill = run_step(hw, model, Workload(prompt=2048, gen=1), "prefill", 2048, exact=False)
    decode = run_step(hw, model, Workload(prompt=2047, gen=2), "decode", 2048, exact=False)
    prefill_compute = prefill["compute_s"] / prefill["step_s"]
    assert prefill_compute > 0.75 and prefill["pe_utilization"] > 0.7
    assert prefill["dram_bw_utilization"] < 0.6
    assert decode["dram_bw_utilization"] > 0.85 and decode["pe_utilization"] < 0.1
    assert prefill["bottleneck"]["prefill"]["resource"] == "array"
    assert decode["bottleneck"]["decode"]["resource"] == "dram"


def test_tpot_grows_with_context() -> None:
    hw = hw_with()
    model = load_model(TINY)
    times = [run_step(hw, model, Workload(model=TINY, prompt=c - 1, gen=2), "decode", c, exact=True)["step_s"]
             for c in (256, 1024, 4096)]
    assert times[0] < times[1] < times[2]


def test_gqa_reads_proportionally_less_kv() -> None:
    hw = hw_with()

    def kv_read(model: ModelSpec) -> float:
        wl = Workload(model="x", prompt=1000, gen=2)
        short = run_step(hw, model, wl, "decode", 1024, exact=True)["dram_bytes_read"]
        long = run_step(hw, model, wl, "decode", 3072, exact=True)["dram_bytes_read"]
        return long - short  # weights cancel: what remains is the extra KV read

    mha, gqa = tiny_variant(num_key_value_heads=8), tiny_variant(num_key_value_heads=2)
    tokens = 3072 - 1024

    def kv_bytes(model: ModelSpec) -> int:  # K and V, FP16, every layer
        return tokens * model.layers * 2 * model.kv_dim * 2

    mha_read, gqa_read = kv_read(mha), kv_read(gqa)
    # both also move the attention scores, which depend on query heads only; the KV part is what differs
    assert mha_read - gqa_read == pytest.approx(kv_bytes(mha) - kv_bytes(gqa), rel=0.01)
    assert mha_read >= kv_bytes(mha) and gqa_read >= kv_bytes(gqa)


@pytest.mark.parametrize("attention", ["unfused", "fused"])
def test_default_mode_within_one_percent_of_exact(attention: str) -> None:
    hw = hw_with(attention=attention)
    model = load_model(TINY)
    wl = Workload(model=TINY, batch=2, prompt=192, gen=24)
    exact = run_request(hw, model, wl, exact=True)
    fast = run_request(hw, model, wl, exact=False, decode_samples=4)
    assert fast["mode"]["block_extrapolation"] and len(fast["mode"]["decode_steps_simulated"]) == 4
    for key in ("ttft_s", "tpot_s", "e2e_s", "energy_j", "dram_bytes_read"):
        assert fast[key] == pytest.approx(exact[key], rel=0.01), key
    assert fast["events"] < exact["events"] / 2


def without_wall_time(result: dict) -> dict:
    return {key: value for key, value in result.items() if key != "wall_s"}


@pytest.mark.parametrize("exact", [False, True])
def test_decode_steps_in_worker_processes_give_the_same_result(exact: bool) -> None:
    """Every step starts from an idle machine: where it is simulated cannot change a number."""
    hw, model = hw_with(), load_model(TINY)
    wl = Workload(model=TINY, prompt=96, gen=6 if exact else 12)
    alone = run_request(hw, model, wl, exact=exact, decode_samples=4)
    pooled = run_request(hw, model, wl, exact=exact, decode_samples=4, workers=2)
    assert without_wall_time(pooled) == without_wall_time(alone)


def test_a_traced_request_with_workers_traces_the_same_steps(tmp_path: Path) -> None:
    from mixpe_sim.cli import main

    runs = {}
    for workers in ("1", "3"):
        out = tmp_path / workers
        assert main(["run", "--model", TINY, "--prompt", "64", "--gen", "5", "--exact", "--trace", "--no-plots",
                     "--workers", workers, "--out", str(out), "--json", "--quiet"]) == 0
        runs[workers] = (json.loads((out / "result.json").read_text()), (out / "trace.json").read_bytes())
    assert without_wall_time(runs["3"][0]) == without_wall_time(runs["1"][0])
    assert runs["3"][1] == runs["1"][1]


def test_workers_must_be_a_positive_whole_number(capsys: pytest.CaptureFixture[str]) -> None:
    import mixpe_sim as ms
    from mixpe_sim.cli import main

    with pytest.raises(ms.ConfigError, match="workers: must be a whole number >= 1"):
        ms.simulate_request("mixpe-w4a16", TINY, prompt=32, gen=2, workers=0)
    with pytest.raises(SystemExit) as exited:  # an argparse usage error
        main(["run", "--model", TINY, "--workers", "0"])
    assert exited.value.code == 2 and "--workers: must be positive" in capsys.readouterr().err


def test_run_result_contract_and_consistency() -> None:
    hw = hw_with()
    model = load_model(TINY)
    wl = Workload(model=TINY, prompt=64, gen=8)
    r = run_request(hw, model, wl)
    for key in ("ttft_s", "tpot_s", "e2e_s", "tokens_per_s", "energy_j", "energy_breakdown_j", "dram_bytes_read",
                "dram_bytes_written", "dram_bw_utilization", "pe_utilization", "stall_breakdown_s", "per_op",
                "events", "wall_s", "config", "version"):
        assert key in r
    assert set(r["energy_breakdown_j"]) == {"dram_static", "dram", "buffer", "core"}
    assert r["energy_j"] == pytest.approx(sum(r["energy_breakdown_j"].values()))
    assert r["e2e_s"] == pytest.approx(r["ttft_s"] + r["tpot_s"] * (wl.gen - 1))
    assert math.isclose(r["compute_s"] + sum(r["stall_breakdown_s"].values()), r["e2e_s"], rel_tol=1e-9)
    assert r["time_breakdown_s"] == {"compute": r["compute_s"], **r["stall_breakdown_s"]}
    assert r["time_s"] == r["e2e_s"] and "compute" not in r["stall_breakdown_s"]
    assert len(r["tpot_per_step_s"]) == wl.gen - 1
    assert r["tokens_per_s"] == pytest.approx(wl.gen / r["e2e_s"])


def test_sample_points_include_first_and_last() -> None:
    contexts = list(range(100, 356))
    picks = sample_points(contexts, 6)
    assert picks[0] == 100 and picks[-1] == 355 and len(picks) == 6


def test_paper_workload_is_refused_by_run() -> None:
    from mixpe_sim.errors import ConfigError

    with pytest.raises(ConfigError, match="linear-only paper workload"):
        run_request(hw_with(), load_model("paper-opt-6.7b"), Workload(model="paper-opt-6.7b"))


def test_run_out_dir_files(tmp_path: Path) -> None:
    from mixpe_sim.cli import main

    out = tmp_path / "res"
    assert main(["run", "--model", TINY, "--prompt", "32", "--gen", "4", "--out", str(out), "--json"]) == 0
    assert {p.name for p in out.iterdir()} == {"result.json", "per_op.csv", "decode_steps.csv", "per_layer.csv",
                                              "manifest.json"}
    assert json.loads((out / "result.json").read_text())["config"]["workload"]["prompt"] == 32
