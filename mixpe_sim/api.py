"""The Python API: load a design and a model, simulate, get typed results (the CLI is a layer over this).

    >>> import mixpe_sim as ms
    >>> hw = ms.load_hardware("mixpe-w4a16", memory="hbm3")
    >>> r = ms.simulate_gemm(hw, 64, 1024, 1024)
    >>> r.time_s > 0 and r.to_dict()["kind"] == "gemm"
    True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from mixpe_sim.config import load_hardware as _load_hardware
from mixpe_sim.config import parse_overrides
from mixpe_sim.config.models import HardwareConfig
from mixpe_sim.errors import ConfigError
from mixpe_sim.results import GemmResult, RequestResult, ServingLoadResult, ServingResult, StepResult
from mixpe_sim.trace.sink import NULL_SINK, TraceSink, as_trace_sink
from mixpe_sim.units import MS_PER_S
from mixpe_sim.workload.models import ModelSpec, check_context
from mixpe_sim.workload.models import load_model as _load_model

Hardware = HardwareConfig | str
Model = ModelSpec | str
Progress = Callable[[str], None]


def load_hardware(preset_or_path: str = "mixpe-w4a16", memory: str | None = None,
                  overrides: Mapping[str, Any] | None = None) -> HardwareConfig:
    """A validated hardware design: a preset name (`mixpe-sim list`) or a YAML file, optionally with
    another memory (preset or file) and `{"key.path": value}` overrides, checked exactly like `--set`
    (string values are read as YAML). Bad input raises `ConfigError` naming the key path.

    >>> hw = load_hardware("dc-mixpe-w4a16", memory="lpddr5-6400", overrides={"array.rows": 16})
    >>> (hw.memory.name, hw.array.rows)
    ('lpddr5-6400', 16)
    """
    return _load_hardware(preset_or_path, memory, _override_list(overrides))


def _override_list(overrides: Mapping[str, Any] | None) -> list[tuple[str, Any]]:
    items = []
    for key, value in (overrides or {}).items():
        items += parse_overrides([f"{key}={value}"]) if isinstance(value, str) else [(key, value)]
    return items


def load_model(name_or_config_json: str) -> ModelSpec:
    """A model: a preset name (`llama-2-7b`, ...) or a HuggingFace `config.json`.

    >>> load_model("llama-3-8b").kv_heads
    8
    """
    return _load_model(name_or_config_json)


def _hardware(hw: Hardware) -> HardwareConfig:
    return hw if isinstance(hw, HardwareConfig) else load_hardware(hw)


def _model(model: Model) -> ModelSpec:
    return model if isinstance(model, ModelSpec) else load_model(model)


def _sink(hw: HardwareConfig, trace: bool, sink: TraceSink | None) -> tuple[TraceSink, Any]:
    if sink is not None:
        return as_trace_sink(sink), None
    if not trace:
        return NULL_SINK, None
    from mixpe_sim.trace.memory import InMemoryTrace

    memory_trace = InMemoryTrace(hw.array.rows * hw.array.cols)
    return memory_trace, memory_trace


def _frames(memory_trace: Any) -> dict[str, Any]:
    if memory_trace is None:
        return {}
    timeline, spans = memory_trace.frames()
    return {"timeline": timeline, "spans": spans}


def simulate_gemm(hw: Hardware, m: int, n: int, k: int, *, max_work: int | None = None,
                  sink: TraceSink | None = None) -> GemmResult:
    """One mpGEMM: activations [m x k] times weights [k x n] stored at the design's quantization.

    >>> r = simulate_gemm("mixpe-w4a16", 64, 4096, 4096)
    >>> r.cycles >= r.compute_cycles
    True
    """
    from mixpe_sim.runs.gemm import run_gemm
    from mixpe_sim.workload.limits import check_work, gemm_work

    config = _hardware(hw)
    check_work(config, gemm_work(config, m, n, k), max_work, "max_work")
    return GemmResult.from_dict(run_gemm(config, m, n, k, NULL_SINK if sink is None else as_trace_sink(sink)))  # type: ignore[return-value]


def simulate_step(hw: Hardware, model: Model, phase: str, context: int, batch: int = 1, *, kv_bits: int = 16,
                  exact: bool = False, quantize_lm_head: bool = False, trace: bool = False,
                  allow_long_context: bool = False, max_work: int | None = None,
                  sink: TraceSink | None = None) -> StepResult:
    """One forward step over every block: prefill of `context` tokens, or one decode token attending
    over a KV cache of `context`. With `trace=True` the result also holds `timeline` and `spans`
    (DataFrames: bandwidth, occupancy, stalls per window; every op, tile and transfer).

    >>> r = simulate_step("dc-mixpe-w4a16", "llama-2-7b", "decode", 2048)
    >>> r.bottleneck["decode"]["resource"]
    'dram'
    """
    from mixpe_sim.runs.llm import Workload, run_step
    from mixpe_sim.workload.limits import check_work, step_work

    config, spec = _hardware(hw), _model(model)
    check_context(spec, context, "context", allow_long_context)
    tokens = context if phase == "prefill" else 1
    check_work(config, step_work(config, spec, batch, tokens, context, exact), max_work, "max_work")
    wl = Workload(model=spec.name, batch=batch, prompt=context if phase == "prefill" else max(1, context - 1),
                  gen=1, kv_bits=kv_bits, quantize_lm_head=quantize_lm_head)
    trace_sink, memory_trace = _sink(config, trace, sink)
    result = run_step(config, spec, wl, phase, context, exact, trace_sink)  # type: ignore[arg-type]
    return StepResult.from_dict(result, **_frames(memory_trace))  # type: ignore[return-value]


def simulate_request(hw: Hardware, model: Model, prompt: int, gen: int, batch: int = 1, *, exact: bool = False,
                     kv_bits: int = 16, quantize_lm_head: bool = False, decode_samples: int = 6,
                     trace: bool = False, allow_long_context: bool = False, max_work: int | None = None,
                     progress: Progress | None = None, sink: TraceSink | None = None,
                     workers: int = 1) -> RequestResult:
    """One LLM request: prefill of `prompt` tokens (time to first token), then `gen - 1` decode steps
    (time per output token). Default mode simulates a few blocks and decode steps and extrapolates
    (within 1 % of `exact=True`, tested). `workers` > 1 simulates the steps in that many local processes
    (the same result, sooner on a machine with the cores).

    >>> r = simulate_request("mixpe-w4a16", "llama-2-7b", prompt=128, gen=4)
    >>> r.e2e_s == r.time_s and r.ttft_s < r.e2e_s
    True
    """
    from mixpe_sim.runs.llm import Workload, run_request
    from mixpe_sim.workload.limits import check_work, request_work

    if type(workers) is not int or workers < 1:
        raise ConfigError("workers", "", f"must be a whole number >= 1, not {workers!r}")
    config, spec = _hardware(hw), _model(model)
    check_context(spec, prompt + gen - 1, "prompt + gen - 1", allow_long_context)
    check_work(config, request_work(config, spec, batch, prompt, gen, exact), max_work, "max_work")
    wl = Workload(model=spec.name, batch=batch, prompt=prompt, gen=gen, kv_bits=kv_bits,
                  quantize_lm_head=quantize_lm_head)
    trace_sink, memory_trace = _sink(config, trace, sink)
    result = run_request(config, spec, wl, exact=exact, decode_samples=decode_samples, trace=trace_sink,
                         progress=progress, workers=workers)
    return RequestResult.from_dict(result, **_frames(memory_trace))  # type: ignore[return-value]


def _serve(hw: Hardware, model: Model, loads: list[float | None], *, trace_file: str | Path | None = None,
           slo_ttft_ms: float | None = None, slo_tpot_ms: float | None = None, progress: Progress | None = None,
           **keywords: Any) -> list[ServingResult]:
    """Serve at each load; keywords not given take the defaults of ServeSpec and ServeOptions."""
    from mixpe_sim.serving.run import ServeSpec, run_loads
    from mixpe_sim.serving.simulate import ServeOptions

    spec_keys = {f.name for f in fields(ServeSpec)} - {"options"}
    option_keys = {f.name for f in fields(ServeOptions)} - {"slo_ttft_s", "slo_tpot_s"}
    unknown = sorted(set(keywords) - spec_keys - option_keys)
    if unknown:
        raise TypeError(f"unknown serving option {', '.join(unknown)} (allowed: trace_file, slo_ttft_ms, "
                        f"slo_tpot_ms, progress, {', '.join(sorted(spec_keys | option_keys))})")
    options = ServeOptions(
        slo_ttft_s=None if slo_ttft_ms is None else slo_ttft_ms / MS_PER_S,
        slo_tpot_s=None if slo_tpot_ms is None else slo_tpot_ms / MS_PER_S,
        **{k: v for k, v in keywords.items() if k in option_keys})
    spec = ServeSpec(trace=None if trace_file is None else str(trace_file), options=options,
                     **{k: v for k, v in keywords.items() if k in spec_keys})
    outcomes = run_loads(_hardware(hw), _model(model), spec, loads, progress)
    return [ServingResult.from_dict(o.result, per_request=o.per_request, timeline=o.timeline)  # type: ignore[misc]
            for o in outcomes]


def simulate_serving(hw: Hardware, model: Model, qps: float | None = 1.0, **options: Any) -> ServingResult:
    """Serve requests arriving as a Poisson process at `qps` requests/s with continuous batching and a
    paged KV cache, every iteration timed by the discrete-event model (docs/serving.md). Keywords (the
    `serve` options): requests=100, prompt=512, gen=128, trace_file (a CSV of prompt_tokens,
    output_tokens and optionally arrival_s, or a shipped trace's name, "sharegpt-like"), seed=0,
    policy="vllm" | "sarathi", max_batch=256, chunk_tokens=512, max_prefill_tokens, kv_block_tokens=16,
    kv_bits=16, quantize_lm_head, slo_ttft_ms, slo_tpot_ms, check_samples=8, exact, allow_long_context,
    progress. Returns a ServingResult (`to_frame()`: one row per request; `timeline_frame()`: one
    per iteration).

    >>> r = simulate_serving("dc-mixpe-w4a16", "llama-2-7b", qps=2.0, requests=4, prompt=64, gen=4,
    ...                      check_samples=1)
    >>> r.completed, r.ttft_s["p50"] <= r.ttft_s["p99"], r.step_model_error < 0.01
    (4, True, True)
    """
    return _serve(hw, model, [qps], **options)[0]


def simulate_serving_load(hw: Hardware, model: Model, qps: Sequence[float],
                          **options: Any) -> ServingLoadResult:
    """`simulate_serving` at each load in `qps` (same keywords), sharing the simulated steps: a
    ServingLoadResult (`to_frame()`: one row per load; the figure: report.serving.plot_latency_vs_load).

    >>> curve = simulate_serving_load("dc-mixpe-w4a16", "llama-2-7b", [1.0, 4.0], requests=4, prompt=64,
    ...                               gen=4, check_samples=1)
    >>> [round(q) for q in curve.to_frame()["qps"]]
    [1, 4]
    """
    return ServingLoadResult(_serve(hw, model, list(qps), **options))


def sweep(spec: str | Path | Mapping[str, Any], out_dir: str | Path | None = None, workers: int = 1,
          scheduler: str | None = None, progress: bool = False) -> Any:
    """Run a design-space sweep (docs/sweeps.md: a YAML file, or the same as a dict) into `out_dir`
    (resumable: finished points are skipped) and return `load_sweep(out_dir)`.

    >>> df = sweep({"command": "gemm", "base": {"m": 8, "n": 256, "k": 256},
    ...             "grid": {"array.rows": [16, 32]}}, out_dir=tmp_dir)
    >>> list(df["array.rows"]), list(df["status"])
    ([16, 32], ['ok', 'ok'])
    """
    import tempfile

    import yaml

    from mixpe_sim.report.progress import sweep_progress
    from mixpe_sim.sweeps.driver import run_sweep

    out = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="mixpe-sweep-"))
    if isinstance(spec, Mapping):
        out.mkdir(parents=True, exist_ok=True)
        path = out / "sweep-spec.yaml"
        path.write_text(yaml.safe_dump(dict(spec), sort_keys=False))
    else:
        path = Path(spec)
    with sweep_progress(progress) as report:
        run_sweep(path, out, workers, scheduler, report)
    return load_sweep(out)


def load_sweep(out_dir: str | Path) -> Any:
    """A sweep directory as a DataFrame: one row per point (its number, status, swept values, metrics,
    error) and its full result as a typed object in the `result` column."""
    from mixpe_sim.results import _pandas, result_from_dict
    from mixpe_sim.sweeps.store import RESULTS_FILE, latest_by_hash

    records = []
    for row in latest_by_hash(Path(out_dir) / RESULTS_FILE).values():
        full = row.get("result")
        records.append({"point": row["point"], "status": row["status"], **row.get("values", {}),
                        **row.get("metrics", {}), "error": row.get("error", ""),
                        "result": result_from_dict({**full, "wall_s": row["wall_s"]}) if full else None})
    return _pandas().DataFrame(sorted(records, key=lambda r: r["point"]))
