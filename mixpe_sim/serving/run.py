"""Serving runs from their options: the requests (fixed lengths or a trace), one shared step model,
one run per load."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mixpe_sim.config.models import HardwareConfig
from mixpe_sim.config.presets import data_root
from mixpe_sim.errors import ConfigError
from mixpe_sim.runs.llm import Progress
from mixpe_sim.serving.kv import KvCache
from mixpe_sim.serving.latency import StepModel
from mixpe_sim.serving.requests import Request, fixed_requests, trace_requests
from mixpe_sim.serving.scheduler import POLICIES
from mixpe_sim.serving.simulate import ServeOptions, ServeOutcome, check_requests, serve
from mixpe_sim.units import MS_PER_S
from mixpe_sim.workload.models import ModelSpec, check_context
from mixpe_sim.workload.shapes import KV_BITS_CHOICES

TRACE_DIR = "traces"  # shipped request traces: workloads/traces/<name>.csv
DEFAULT_REQUESTS = 100  # per load, without a trace


@dataclass(frozen=True)
class ServeSpec:
    """Where the requests come from, and how they are served."""

    requests: int | None = DEFAULT_REQUESTS  # None: every row of a trace, else DEFAULT_REQUESTS
    prompt: int = 512
    gen: int = 128
    trace: str | None = None  # a CSV file, or the name of a shipped trace
    seed: int = 0
    allow_long_context: bool = False
    options: ServeOptions = field(default_factory=ServeOptions)


def trace_path(name_or_path: str) -> Path:
    """A request trace: a CSV file, or a shipped one by name (`sharegpt-like`)."""
    path = Path(name_or_path)
    if path.exists() or path.suffix:
        return path
    shipped = data_root() / "workloads" / TRACE_DIR / f"{name_or_path}.csv"
    if shipped.exists():
        return shipped
    names = sorted(p.stem for p in (data_root() / "workloads" / TRACE_DIR).glob("*.csv"))
    raise ConfigError("--trace", "", f"'{name_or_path}' is neither a file nor a shipped trace "
                      f"(allowed: a CSV path, or one of {', '.join(names)})")


def build_requests(spec: ServeSpec, qps: float | None) -> tuple[list[Request], str]:
    """The requests of one load, and where they came from (for error messages)."""
    if spec.trace is not None:
        path = trace_path(spec.trace)
        return trace_requests(path, qps, spec.seed, spec.requests), str(path)
    if qps is None:
        raise ConfigError("--qps", "", "needs an arrival rate in requests per second (or a trace with arrival_s)")
    return fixed_requests(spec.requests or DEFAULT_REQUESTS, qps, spec.seed, spec.prompt, spec.gen), "--prompt/--gen"


def check_spec(spec: ServeSpec, loads: Sequence[float | None]) -> None:
    """Refuse bad serving options with one line naming the option (before anything is simulated)."""
    o = spec.options
    for qps in loads:
        if qps is not None and not (math.isfinite(qps) and qps > 0):
            raise ConfigError("--qps", "", f"must be a positive number of requests per second, got {qps}")
    checks = [("--requests", spec.requests, spec.requests is None or spec.requests >= 1),
              ("--prompt", spec.prompt, spec.prompt >= 1), ("--gen", spec.gen, spec.gen >= 1),
              ("--max-batch", o.max_batch, o.max_batch >= 1), ("--chunk-tokens", o.chunk_tokens, o.chunk_tokens >= 1),
              ("--kv-block-tokens", o.kv_block_tokens, o.kv_block_tokens >= 1),
              ("--max-prefill-tokens", o.max_prefill_tokens, o.max_prefill_tokens is None or o.max_prefill_tokens >= 1),
              ("--check-samples", o.check_samples, o.check_samples >= 0)]
    for option, value, ok in checks:
        if not ok:
            raise ConfigError(option, "", f"must be at least {0 if option == '--check-samples' else 1}, got {value}")
    for option, value in (("--slo-ttft-ms", o.slo_ttft_s), ("--slo-tpot-ms", o.slo_tpot_s)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ConfigError(option, "", f"must be a positive number of milliseconds, got {value * MS_PER_S:g}")
    if o.kv_bits not in KV_BITS_CHOICES:
        raise ConfigError("--kv-bits", "", f"must be one of {', '.join(map(str, KV_BITS_CHOICES))}, got {o.kv_bits}")
    if o.policy not in POLICIES:
        raise ConfigError("--policy", "", f"unknown policy '{o.policy}' (allowed: {', '.join(POLICIES)})")


def run_loads(hw: HardwareConfig, model: ModelSpec, spec: ServeSpec, loads: Sequence[float | None],
              progress: Progress | None = None) -> list[ServeOutcome]:
    """One serving run per load; the step model (and every step it simulated) is shared between them."""
    if model.family == "paper-linear":
        raise ConfigError("--model", "", f"'{model.name}' is a linear-only paper workload: it has no prompt "
                          "or decode to serve")
    check_spec(spec, loads)
    o = spec.options
    kv = KvCache.for_design(hw, model, o.kv_bits, o.kv_block_tokens, o.quantize_lm_head)
    prepared = []
    for qps in loads:
        requests, where = build_requests(spec, qps)
        check_requests(requests, kv, o, model, where)
        longest = max(r.prompt_tokens + r.output_tokens - 1 for r in requests)
        check_context(model, longest, f"{where}: prompt + output - 1", spec.allow_long_context)
        prepared.append((qps, requests))
    step_model = StepModel(hw, model, o.kv_bits, o.quantize_lm_head, o.max_batch, o.exact)
    outcomes = []
    for index, (qps, requests) in enumerate(prepared, 1):
        report = _prefixed(progress, f"load {index}/{len(prepared)}: ") if len(prepared) > 1 else progress
        workload = {**_workload(spec), "qps": qps, "requests": len(requests)}
        outcomes.append(serve(hw, model, requests, o, step_model, workload, qps, report))
    return outcomes


def _workload(spec: ServeSpec) -> dict[str, Any]:
    flat = {k: v for k, v in asdict(spec).items() if k != "options"}
    return {**flat, **asdict(spec.options)}


def _prefixed(progress: Progress | None, prefix: str) -> Progress | None:
    if progress is None:
        return None
    return lambda message: progress(prefix + message)
