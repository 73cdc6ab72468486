"""A serving run: requests arrive, the scheduler forms iterations, the step model times each one.

The clock moves by whole iterations (an iteration is one forward step of the batch the scheduler
formed); between iterations with nothing to run it jumps to the next arrival, and that idle time is
charged at the design's idle power.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mixpe_sim.config.models import HardwareConfig
from mixpe_sim.energy import idle_power_w
from mixpe_sim.errors import ConfigError, MixpeError
from mixpe_sim.report.bottleneck import bottleneck
from mixpe_sim.runs.fields import energy_fields, hardware_fields, header, provenance, time_fields, traffic_fields
from mixpe_sim.runs.llm import Progress
from mixpe_sim.runs.tally import Tally
from mixpe_sim.serving.kv import KvCache, kv_bytes_per_token, weight_bytes
from mixpe_sim.serving.latency import (
    DEFAULT_CHECK_SAMPLES,
    Anchor,
    CheckSample,
    StepModel,
    check_indices,
    tally_of_parts,
)
from mixpe_sim.serving.requests import Request
from mixpe_sim.serving.scheduler import Policy, Running, Scheduler, Work
from mixpe_sim.workload.models import ModelSpec
from mixpe_sim.workload.shapes import SequenceShape

Weights = dict[tuple[int, str], tuple[float, Anchor]]  # (anchor id, scale) -> (summed weight, anchor)
PERCENTILES = (50, 90, 99)
DEFAULT_MAX_BATCH = 256  # vLLM's max_num_seqs
DEFAULT_CHUNK_TOKENS = 512  # Sarathi-Serve's token budget for LLaMA-class models at tight TBT SLOs
DEFAULT_BLOCK_TOKENS = 16  # vLLM's block size
MIN_PREFILL_BUDGET = 2048  # vLLM v0 without chunked prefill: max(max_model_len, 2048) tokens


@dataclass(frozen=True)
class ServeOptions:
    policy: Policy = "vllm"
    max_batch: int = DEFAULT_MAX_BATCH
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS  # sarathi: tokens per iteration
    max_prefill_tokens: int | None = None  # vllm: prefill tokens per iteration (None: vLLM's default)
    kv_block_tokens: int = DEFAULT_BLOCK_TOKENS
    kv_bits: int = 16
    quantize_lm_head: bool = False
    slo_ttft_s: float | None = None
    slo_tpot_s: float | None = None
    check_samples: int = DEFAULT_CHECK_SAMPLES
    exact: bool = False

    def token_budget(self, model: ModelSpec) -> int:
        if self.policy == "sarathi":
            return self.chunk_tokens
        return self.max_prefill_tokens or max(MIN_PREFILL_BUDGET, model.max_positions or 0)


@dataclass(frozen=True)
class Iteration:
    start_s: float
    end_s: float
    sequences: tuple[SequenceShape, ...]
    energy_j: float
    kv_blocks: int
    waiting: int
    running: int

    @property
    def prefill_tokens(self) -> int:
        return sum(s.new_tokens for s in self.sequences if not s.is_decode)

    @property
    def decodes(self) -> int:
        return sum(1 for s in self.sequences if s.is_decode)


def check_requests(requests: Sequence[Request], kv: KvCache, options: ServeOptions, model: ModelSpec,
                   where: str) -> None:
    """Refuse, before simulating, a request that could never be served."""
    budget = options.token_budget(model)
    for r in requests:
        lifetime = r.prompt_tokens + r.output_tokens - 1  # KV tokens when its last token is produced
        if kv.total_blocks is not None and kv.blocks_for(lifetime) > kv.total_blocks:
            raise ConfigError(where, f"request {r.request_id}", f"needs {lifetime} tokens of KV cache "
                              f"({kv.blocks_for(lifetime)} blocks of {kv.block_tokens}); the memory holds "
                              f"{kv.total_blocks} blocks after the weights (allowed: a larger memory "
                              "(memory.capacity_bytes), --kv-bits 8 or 4, or shorter requests)")
        if options.policy == "vllm" and r.prompt_tokens > budget:
            raise ConfigError(where, f"request {r.request_id}", f"prompt of {r.prompt_tokens} tokens exceeds "
                              f"the prefill budget of {budget} (allowed: --max-prefill-tokens >= "
                              f"{r.prompt_tokens}, or --policy sarathi, which chunks prompts)")


@dataclass(frozen=True)
class ServeOutcome:
    result: dict[str, Any]  # what --json prints
    per_request: list[dict[str, Any]]  # one row per request (--out requests.csv)
    timeline: list[dict[str, Any]]  # one row per iteration (--out timeline.csv, trace.json counters)


def serve(hw: HardwareConfig, model: ModelSpec, requests: Sequence[Request], options: ServeOptions,
          step_model: StepModel, workload: dict[str, Any], qps: float | None,
          progress: Progress | None = None) -> ServeOutcome:
    """Serve `requests` (sorted by arrival) and measure it (docs/serving.md)."""
    started = time.perf_counter()
    simulated_before = len(step_model.anchors)
    kv = KvCache.for_design(hw, model, options.kv_bits, options.kv_block_tokens, options.quantize_lm_head)
    scheduler = Scheduler(options.policy, kv, options.max_batch, options.token_budget(model))
    sequences, iterations, weights = _run(scheduler, requests, step_model, progress)
    samples = _check(step_model, iterations, options.check_samples, progress)
    tally = tally_of_parts(weights)
    busy_s = sum(it.end_s - it.start_s for it in iterations)
    # from the first arrival: a trace's clock may start anywhere
    duration_s = iterations[-1].end_s - requests[0].arrival_s if iterations else 0.0
    idle_s = max(0.0, duration_s - busy_s)
    idle_j = idle_power_w(hw) * idle_s
    rows = [_request_row(s) for s in sequences]
    result = {
        **header("serve", duration_s),
        "qps": qps,
        **_request_metrics(sequences, rows, requests, duration_s, options),
        **_energy(tally, idle_j, sequences),
        **traffic_fields(hw, tally, duration_s),
        **_time_breakdown(tally, idle_s),
        "preemptions": scheduler.preemptions,
        "iterations": len(iterations),
        "batch": _batch_stats(iterations),
        "memory": _kv_fields(hw, model, kv, iterations, options),
        **_step_model_fields(step_model, samples, simulated_before),
        **hardware_fields(hw),
        "bottleneck": {"serve": bottleneck(hw, tally)} if tally else {},
        **provenance(hw, workload, asdict(model), sum(a.events for a in step_model.anchors[simulated_before:]),
                     time.perf_counter() - started),
    }
    return ServeOutcome(result, rows, [_timeline_row(it, kv) for it in iterations])


def _run(scheduler: Scheduler, requests: Sequence[Request], step_model: StepModel,
         progress: Progress | None) -> tuple[list[Running], list[Iteration], Weights]:
    now = 0.0
    arrived = 0
    sequences: list[Running] = []
    iterations: list[Iteration] = []
    weights: Weights = {}
    finished = 0
    while True:
        while arrived < len(requests) and requests[arrived].arrival_s <= now:
            sequences.append(scheduler.admit(requests[arrived]))
            arrived += 1
        if scheduler.idle:
            if arrived == len(requests):
                break
            now = requests[arrived].arrival_s
            continue
        work = scheduler.next_iteration(now)
        if not work:
            raise MixpeError(f"serving stalled at t={now:.6g} s: {len(scheduler.waiting)} waiting, "
                             f"{len(scheduler.running)} running, none can be scheduled")
        iteration = _iterate(step_model, work, now, scheduler, weights)
        iterations.append(iteration)
        now = iteration.end_s
        done = scheduler.complete(work, now)
        if done and progress is not None:
            finished += len(done)
            progress(f"{finished}/{len(requests)} requests done, {len(iterations)} iterations")
    unfinished = [s for s in sequences if s.finished_s is None]
    if unfinished or len(sequences) != len(requests):
        first = unfinished[0].request.request_id if unfinished else len(sequences)
        raise MixpeError(f"{len(unfinished) or len(requests) - len(sequences)} requests did not complete "
                         f"(first: request {first})")
    return sequences, iterations, weights


def _iterate(step_model: StepModel, work: list[Work], now: float, scheduler: Scheduler,
             weights: Weights) -> Iteration:
    shapes = tuple(w.shape for w in work)
    prediction = step_model.predict(shapes)
    for coefficient, anchor, factors in prediction.weights:
        for scale, factor in factors.items():
            total, _ = weights.get((id(anchor), scale), (0.0, anchor))
            weights[(id(anchor), scale)] = (total + coefficient * factor, anchor)
    return Iteration(now, now + prediction.time_s, shapes, prediction.energy_j, scheduler.kv.used_blocks,
                     len(scheduler.waiting), len(scheduler.running))


def _check(step_model: StepModel, iterations: list[Iteration], samples: int,
           progress: Progress | None) -> list[CheckSample]:
    """Simulate a sample of real iterations exactly and compare with the predictions the run used.
    Iterations that were themselves simulated (anchors) are not candidates: their error is zero."""
    candidates = [i for i, it in enumerate(iterations) if not step_model.simulated(it.sequences)]
    checked = []
    for index in check_indices(candidates, samples):
        it = iterations[index]
        if progress is not None:
            progress(f"checking the step model: iteration {index} ({_describe(it)})")
        exact = step_model.simulate(it.sequences, f"check: iteration {index}, {_describe(it)}")
        checked.append(CheckSample(index, _describe(it), it.end_s - it.start_s, exact.time_s, it.energy_j,
                                   exact.total_energy_j))
    return checked


def _describe(it: Iteration) -> str:
    return f"{it.prefill_tokens} prefill tokens, {it.decodes} decodes"


def _summary(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, **{f"p{p}": None for p in PERCENTILES}}
    array = np.asarray(values, dtype=float)
    return {"mean": float(array.mean()), **{f"p{p}": float(np.percentile(array, p)) for p in PERCENTILES}}


def _request_metrics(sequences: list[Running], rows: list[dict[str, Any]], requests: Sequence[Request],
                     duration_s: float, options: ServeOptions) -> dict[str, Any]:
    generated = sum(r.output_tokens for r in requests)
    prompt = sum(r.prompt_tokens for r in requests)
    good = [r for r in rows if _meets_slo(r, options)]

    def rate(count: int) -> float:
        return count / duration_s if duration_s else 0.0

    return {
        "requests": len(requests),
        "completed": sum(1 for s in sequences if s.finished_s is not None),
        "ttft_s": _summary([r["ttft_s"] for r in rows]),
        "tpot_s": _summary([r["tpot_s"] for r in rows if r["tpot_s"] is not None]),
        "e2e_s": _summary([r["e2e_s"] for r in rows]),
        "queue_s": _summary([r["queue_s"] for r in rows]),
        "duration_s": duration_s,
        "throughput_tokens_per_s": rate(generated),
        "throughput_total_tokens_per_s": rate(generated + prompt),
        "throughput_requests_per_s": rate(len(rows)),
        "goodput_requests_per_s": rate(len(good)),
        "slo": {"ttft_s": options.slo_ttft_s, "tpot_s": options.slo_tpot_s, "met": len(good)},
    }


def _meets_slo(row: dict[str, Any], options: ServeOptions) -> bool:
    ttft_ok = options.slo_ttft_s is None or row["ttft_s"] <= options.slo_ttft_s
    tpot_ok = options.slo_tpot_s is None or row["tpot_s"] is None or row["tpot_s"] <= options.slo_tpot_s
    return ttft_ok and tpot_ok


def _request_row(seq: Running) -> dict[str, Any]:
    r = seq.request
    assert seq.first_token_s is not None and seq.finished_s is not None and seq.first_scheduled_s is not None
    return {
        "request_id": r.request_id, "arrival_s": r.arrival_s, "prompt_tokens": r.prompt_tokens,
        "output_tokens": r.output_tokens,
        "queue_s": seq.first_scheduled_s - r.arrival_s,
        "ttft_s": seq.first_token_s - r.arrival_s,
        # vLLM's definition: the time after the first token, per further token
        "tpot_s": (seq.finished_s - seq.first_token_s) / (r.output_tokens - 1) if r.output_tokens > 1 else None,
        "e2e_s": seq.finished_s - r.arrival_s,
        "finished_s": seq.finished_s,
        "preemptions": seq.preemptions,
    }


def _energy(tally: Tally, idle_j: float, sequences: list[Running]) -> dict[str, Any]:
    fields = energy_fields(tally)
    fields["energy_breakdown_j"]["idle"] = idle_j
    fields["energy_j"] += idle_j
    tokens = sum(s.request.output_tokens for s in sequences)
    return {**fields, "energy_j_per_token": fields["energy_j"] / tokens if tokens else 0.0}


def _time_breakdown(tally: Tally, idle_s: float) -> dict[str, Any]:
    fields = time_fields(tally)
    # idle: no request to serve. Listed with the stalls so that compute + stalls add up to the duration
    fields["stall_breakdown_s"]["idle"] = idle_s
    fields["time_breakdown_s"]["idle"] = idle_s
    return fields


def _batch_stats(iterations: list[Iteration]) -> dict[str, Any]:
    sizes = [len(it.sequences) for it in iterations]
    decode = [it.decodes for it in iterations if it.decodes]
    busy = sum(it.end_s - it.start_s for it in iterations)
    weighted = sum(len(it.sequences) * (it.end_s - it.start_s) for it in iterations)
    return {
        "mean": float(np.mean(sizes)) if sizes else 0.0,
        "time_weighted_mean": weighted / busy if busy else 0.0,
        "max": max(sizes, default=0),
        "p50": float(np.percentile(sizes, 50)) if sizes else 0.0,
        "decode_mean": float(np.mean(decode)) if decode else 0.0,
        "prefill_iterations": sum(1 for it in iterations if it.prefill_tokens),
    }


def _kv_fields(hw: HardwareConfig, model: ModelSpec, kv: KvCache, iterations: list[Iteration],
               options: ServeOptions) -> dict[str, Any]:
    used = [it.kv_blocks for it in iterations]
    return {
        "capacity_bytes": hw.memory.capacity_bytes,
        "weight_bytes": weight_bytes(hw, model, options.quantize_lm_head),
        "kv_bytes_per_token": kv_bytes_per_token(model, options.kv_bits),
        "kv_block_tokens": kv.block_tokens,
        "kv_blocks": kv.total_blocks,
        "kv_peak_blocks": max(used, default=0),
        "kv_peak_occupancy": max(used, default=0) / kv.total_blocks if kv.total_blocks else None,
        "kv_mean_occupancy": float(np.mean(used)) / kv.total_blocks if kv.total_blocks and used else None,
    }


def _step_model_fields(step_model: StepModel, samples: list[CheckSample], simulated_before: int) -> dict[str, Any]:
    new = step_model.anchors[simulated_before:]
    return {
        "step_model_error": max((s.error for s in samples), default=None),
        "step_model_energy_error": max((s.energy_error for s in samples), default=None),
        "step_model": {
            "simulated_steps": len(new),
            "simulated_steps_total": len(step_model.anchors),
            "simulation_wall_s": sum(a.wall_s for a in new),
            "checks": [asdict(s) | {"error": s.error, "energy_error": s.energy_error} for s in samples],
        },
    }


def _timeline_row(it: Iteration, kv: KvCache) -> dict[str, Any]:
    return {"start_s": it.start_s, "end_s": it.end_s, "batch": len(it.sequences),
            "prefill_tokens": it.prefill_tokens, "decodes": it.decodes, "kv_blocks": it.kv_blocks,
            "kv_occupancy": it.kv_blocks / kv.total_blocks if kv.total_blocks else None,
            "waiting": it.waiting, "running": it.running, "energy_j": it.energy_j}
