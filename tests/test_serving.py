"""Serving: scheduling and KV accounting (with a closed-form stand-in for the step model, so the
properties run fast), and the real step model against `run` and against exact simulation."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixpe_sim import load_hardware, load_model, simulate_request, simulate_serving, simulate_serving_load
from mixpe_sim.cli import main
from mixpe_sim.config.models import HardwareConfig
from mixpe_sim.errors import ConfigError
from mixpe_sim.serving.kv import KvCache, kv_bytes_per_token, weight_bytes
from mixpe_sim.serving.latency import Prediction
from mixpe_sim.serving.requests import Request, fixed_requests, poisson_arrivals
from mixpe_sim.serving.simulate import ServeOptions, ServeOutcome, check_requests, serve
from mixpe_sim.workload.models import ModelSpec
from mixpe_sim.workload.shapes import SequenceShape

DC = "dc-mixpe-w4a16"


@dataclass
class LinearStepModel:
    """Stand-in step model: an iteration takes `base_s` + `per_token_s` x tokens + `per_context_s`
    x attended keys (a roofline-like closed form), so scheduling properties can be checked fast."""

    base_s: float = 0.01
    per_token_s: float = 1e-4
    per_context_s: float = 1e-7
    shapes: list[tuple[SequenceShape, ...]] = field(default_factory=list)

    anchors: list = field(default_factory=list)

    def predict(self, sequences: Sequence[SequenceShape]) -> Prediction:
        self.shapes.append(tuple(sequences))
        tokens = sum(s.new_tokens for s in sequences)
        keys = sum(s.new_tokens * s.context for s in sequences)
        return Prediction(self.base_s + self.per_token_s * tokens + self.per_context_s * keys, 0.0, [])

    def simulated(self, sequences: Sequence[SequenceShape]) -> bool:
        return True  # nothing to check against: the stand-in is exact by definition


@pytest.fixture(scope="module")
def dc() -> tuple[HardwareConfig, ModelSpec]:
    return load_hardware(DC), load_model("llama-2-7b")


def _serve(
    dc: tuple[HardwareConfig, ModelSpec], requests: list[Request],
    stand_in: LinearStepModel | None = None, **options: object,
) -> tuple[ServeOutcome, LinearStepModel]:
    hw, model = dc
    opts = ServeOptions(check_samples=0, **options)
    model_ = stand_in or LinearStepModel()
    return serve(hw, model, requests, opts, model_, {}, None), model_


# ---------------------------------------------------------------- scheduling and the KV cache


def test_every_request_completes_with_its_tokens(dc) -> None:
    requests = fixed_requests(50, 20.0, 3, 100, 20)
    outcome, stand_in = _serve(dc, requests)
    assert outcome.result["completed"] == 50
    emitted = sum(1 for shapes in stand_in.shapes for s in shapes if s.emits_token)
    assert emitted == 50 * 20  # one token per emitting sequence, the first from the prefill
    assert all(row["e2e_s"] >= row["ttft_s"] > 0 for row in outcome.per_request)


def test_littles_law(dc) -> None:
    """Mean number in the system (integrated over the iterations) = arrival rate x mean E2E."""
    qps = 4.0
    requests = fixed_requests(3000, qps, 11, 64, 16)
    outcome, _ = _serve(dc, requests)
    timeline = outcome.timeline
    in_system = sum((row["waiting"] + row["running"]) * (row["end_s"] - row["start_s"]) for row in timeline)
    mean_in_system = in_system / outcome.result["duration_s"]
    assert mean_in_system == pytest.approx(qps * outcome.result["e2e_s"]["mean"], rel=0.05)


def test_throughput_saturates_at_the_batch_limit(dc) -> None:
    """All requests at once: decode iterations hold max_batch sequences, so output throughput is at
    most max_batch tokens per decode iteration, and doubling the load changes nothing."""
    stand_in = LinearStepModel(base_s=0.02, per_token_s=0.0, per_context_s=0.0)
    rates = []
    for qps in (1e4, 2e4):
        outcome, _ = _serve(dc, fixed_requests(64, qps, 1, 32, 33), stand_in, max_batch=8)
        rates.append(outcome.result["throughput_tokens_per_s"])
        assert outcome.result["batch"]["max"] == 8
    bound = 8 / 0.02
    assert rates[0] == pytest.approx(rates[1], rel=0.01)
    assert 0.85 * bound < rates[0] <= bound


def test_kv_never_exceeds_capacity_and_preempts(dc, monkeypatch) -> None:
    blocks = 60  # 960 tokens: far fewer than 40 requests of 64 + 64 tokens need together
    monkeypatch.setattr(KvCache, "for_design", classmethod(lambda cls, *a, **k: cls(blocks, 16)))
    outcome, _ = _serve(dc, fixed_requests(40, 1e3, 2, 64, 64))
    assert outcome.result["completed"] == 40
    assert max(row["kv_blocks"] for row in outcome.timeline) <= blocks
    assert outcome.result["preemptions"] > 0
    assert outcome.result["memory"]["kv_peak_occupancy"] <= 1.0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lengths=st.lists(st.tuples(st.integers(1, 300), st.integers(1, 60)), min_size=1, max_size=25),
       policy=st.sampled_from(["vllm", "sarathi"]), blocks=st.integers(25, 200), qps=st.floats(0.5, 500))
def test_properties_over_random_traces(dc, monkeypatch, lengths, policy, blocks, qps) -> None:
    """Any trace, either policy, any KV size that fits the longest request: every request completes
    with all its tokens, the KV cache never overflows, prefill chunks respect the budget."""
    monkeypatch.setattr(KvCache, "for_design", classmethod(lambda cls, *a, **k: cls(blocks, 16)))
    times = poisson_arrivals(len(lengths), qps, 5)
    requests = [Request(i, t, p, g) for i, (t, (p, g)) in enumerate(zip(times, lengths, strict=True))]
    if any(math.ceil((p + g - 1) / 16) > blocks for p, g in lengths):
        with pytest.raises(ConfigError, match="KV cache"):
            _serve(dc, requests, policy=policy, chunk_tokens=128)
        return
    outcome, stand_in = _serve(dc, requests, policy=policy, chunk_tokens=128)
    assert outcome.result["completed"] == len(requests)
    assert max(row["kv_blocks"] for row in outcome.timeline) <= blocks
    emitted = sum(1 for shapes in stand_in.shapes for s in shapes if s.emits_token)
    assert emitted == sum(g for _, g in lengths)
    if policy == "sarathi":
        assert all(sum(s.new_tokens for s in shapes) <= 128 for shapes in stand_in.shapes)


def test_sarathi_chunks_long_prompts(dc) -> None:
    outcome, stand_in = _serve(dc, fixed_requests(3, 1e3, 1, 1000, 4), policy="sarathi", chunk_tokens=256)
    first = [shapes for shapes in stand_in.shapes if any(s.new_tokens > 1 for s in shapes)]
    assert all(sum(s.new_tokens for s in shapes) <= 256 for shapes in stand_in.shapes)
    assert len(first) >= 3 * 1000 // 256  # every prompt split over several iterations
    assert outcome.result["completed"] == 3


def test_same_seed_same_output(dc) -> None:
    runs = [_serve(dc, fixed_requests(40, 5.0, 9, 80, 12))[0] for _ in range(2)]
    strip = ("wall_s",)
    first, second = ({k: v for k, v in r.result.items() if k not in strip} for r in runs)
    assert first == second
    assert runs[0].per_request == runs[1].per_request
    assert fixed_requests(5, 2.0, 1, 8, 8) != fixed_requests(5, 2.0, 2, 8, 8)


def test_a_request_that_never_fits_is_refused_before_simulating(dc) -> None:
    hw, model = dc
    kv = KvCache.for_design(hw, model, 16, 16)
    huge = [Request(0, 0.0, 100, 10), Request(1, 1.0, 30_000, 100)]
    with pytest.raises(ConfigError, match=r"request 1.*needs 30099 tokens of KV cache"):
        check_requests(huge, kv, ServeOptions(), model, "test")


def test_kv_capacity_is_memory_minus_weights(dc) -> None:
    hw, model = dc
    kv = KvCache.for_design(hw, model, 16, 16)
    free = hw.memory.capacity_bytes - weight_bytes(hw, model)
    assert kv.total_blocks == free // (16 * kv_bytes_per_token(model, 16))
    # LLaMA-2-7B: 2 (K, V) x 32 layers x 4096 x 2 bytes per token
    assert kv_bytes_per_token(model, 16) == 2 * 32 * 4096 * 2


# ---------------------------------------------------------------- the real step model


def test_low_load_reproduces_run() -> None:
    """At very low load every request is alone: TTFT and TPOT are `run`'s."""
    served = simulate_serving(DC, "llama-2-7b", qps=0.01, requests=3, prompt=128, gen=9, check_samples=2)
    alone = simulate_request(DC, "llama-2-7b", prompt=128, gen=9)
    assert served.queue_s["p99"] == 0.0
    assert served.ttft_s["p50"] == pytest.approx(alone.ttft_s, rel=0.01)
    assert served.tpot_s["p50"] == pytest.approx(alone.tpot_s, rel=0.02)
    assert served.step_model_error is not None and served.step_model_error < 0.01


def test_reused_step_latencies_match_the_simulation() -> None:
    """Batches of mixed sizes and contexts: the sampled iterations simulated exactly agree with the
    reused latencies within 1 % (time) and 2 % (energy)."""
    r = simulate_serving(DC, "llama-2-7b", qps=30.0, requests=40, prompt=96, gen=24, max_batch=24,
                         check_samples=4, seed=3)
    assert len(r.step_model["checks"]) == 4
    assert r.step_model_error < 0.01
    assert r.step_model_energy_error < 0.02
    assert r.completed == 40 and r.ttft_s["p50"] <= r.ttft_s["p90"] <= r.ttft_s["p99"]


def test_load_curve_shares_the_step_model() -> None:
    curve = simulate_serving_load(DC, "llama-2-7b", [0.5, 50.0], requests=12, prompt=64, gen=8, check_samples=1)
    low, high = curve.loads
    assert high.step_model["simulated_steps"] < high.step_model["simulated_steps_total"]
    assert high.ttft_s["p99"] > low.ttft_s["p99"]  # queueing under load
    assert high.throughput_tokens_per_s > low.throughput_tokens_per_s


# ---------------------------------------------------------------- the command line


def test_cli_json_keys_and_out_files(tmp_path, capsys) -> None:
    out = tmp_path / "serve"
    code = main(["serve", "--hw", DC, "--prompt", "64", "--gen", "6", "--qps", "2", "--requests", "5",
                 "--check-samples", "1", "--slo-ttft-ms", "500", "--json", "--quiet", "--out", str(out)])
    assert code == 0
    r = json.loads(capsys.readouterr().out)
    for key in ("requests", "completed", "ttft_s", "tpot_s", "e2e_s", "queue_s", "throughput_tokens_per_s",
                "throughput_requests_per_s", "goodput_requests_per_s", "energy_j", "energy_j_per_token",
                "preemptions", "batch", "step_model_error", "config", "version", "wall_s"):
        assert key in r, key
    assert set(r["ttft_s"]) == {"mean", "p50", "p90", "p99"}
    assert r["kind"] == "serve" and r["slo"]["ttft_s"] == 0.5
    for name in ("result.json", "requests.csv", "timeline.csv", "trace.json"):
        assert (out / name).exists(), name
    assert len((out / "requests.csv").read_text().splitlines()) == 1 + 5
    trace = json.loads((out / "trace.json").read_text())
    assert {e["name"] for e in trace["traceEvents"] if e["ph"] == "C"} >= {"batch", "KV cache used", "queue"}


@pytest.mark.parametrize("argv, fragment", [
    (["--qps", "0"], "--qps"),
    (["--qps", "-1"], "--qps"),
    (["--requests", "0"], "--requests"),
    (["--slo-ttft-ms", "fast"], "--slo-ttft-ms"),
    (["--policy", "fifo"], "--policy"),
    (["--trace", "no-such-trace"], "no-such-trace"),
])
def test_cli_bad_input_one_line_exit_2(argv, fragment, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        code = main(["serve", "--hw", DC, "--quiet", *argv])
        raise SystemExit(code)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("text, fragment", [
    ("prompt_tokens\n5\n", "missing output_tokens"),
    ("prompt_tokens,output_tokens\n5,-3\n", "row 2: output_tokens"),
    ("arrival_s,prompt_tokens,output_tokens\n1.0,5,5\n0.5,5,5\n", "row 3: arrival_s"),
    ("prompt_tokens,output_tokens\n5,x\n", "row 2: output_tokens"),
    ("arrival_s,prompt_tokens,output_tokens\n1.0,5,5\n", "own arrival times"),  # and --qps given
])
def test_cli_bad_trace_names_row_and_column(tmp_path, capsys, text, fragment) -> None:
    path = tmp_path / "t.csv"
    path.write_text(text)
    assert main(["serve", "--hw", DC, "--trace", str(path), "--qps", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert str(path) in err and fragment in err and len(err.splitlines()) == 1


def test_a_timed_trace_serves_from_its_first_arrival_and_plots_its_timeline(tmp_path) -> None:
    """Arrival times that start late shift every timestamp but no metric; the timeline of a run
    without --qps (qps None) is drawn."""
    pytest.importorskip("matplotlib")
    results = {}
    for start in (0.0, 1000.0):
        path = tmp_path / f"t{start:g}.csv"
        path.write_text("arrival_s,prompt_tokens,output_tokens\n" +
                        "".join(f"{start + 0.5 * i},32,4\n" for i in range(3)))
        out = tmp_path / f"out{start:g}"
        assert main(["serve", "--hw", DC, "--trace", str(path), "--check-samples", "0", "--quiet",
                     "--out", str(out)]) == 0
        results[start] = json.loads((out / "result.json").read_text())
        assert (out / "serve_timeline.png").exists()
    for key in ("duration_s", "throughput_tokens_per_s", "energy_j"):
        assert results[1000.0][key] == pytest.approx(results[0.0][key], rel=1e-9), key


def test_api_refuses_a_kv_precision_the_lowering_does_not_store() -> None:
    with pytest.raises(ConfigError, match="--kv-bits"):
        simulate_serving(DC, "llama-2-7b", 1.0, requests=2, kv_bits=3)
    with pytest.raises(TypeError, match="unknown serving option"):
        simulate_serving(DC, "llama-2-7b", 1.0, request=2)


def test_shipped_trace_matches_its_published_means() -> None:
    from mixpe_sim.serving.requests import trace_requests
    from mixpe_sim.serving.run import trace_path

    requests = trace_requests(trace_path("sharegpt-like"), 1.0, 0, None)
    assert len(requests) == 1000
    assert sum(r.prompt_tokens for r in requests) / 1000 == pytest.approx(229.7, abs=0.5)
    assert sum(r.output_tokens for r in requests) / 1000 == pytest.approx(203.1, abs=0.5)
    assert all(4 <= r.prompt_tokens <= 1024 and r.prompt_tokens + r.output_tokens <= 2048 for r in requests)
