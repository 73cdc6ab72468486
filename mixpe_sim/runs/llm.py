"""End-to-end LLM request: prefill (time to first token) then decode steps (time per output token).

Default mode uses two shortcuts, each checked against `--exact` by the test suite:
  * blocks: a forward step is simulated with blocks [0, 1] and with [0, 1, j] for one block j of each
    precision class; the difference is one steady-state block of that class, and the step time is
    T([0, 1]) + sum over blocks 2..L-1 of their class's difference.
  * decode steps: steps are simulated at a few sampled context lengths (always the first and the
    last) and linearly interpolated in between.
`--exact` simulates every block of every step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from mixpe_sim.collector import collector_paused
from mixpe_sim.config.models import HardwareConfig
from mixpe_sim.engine.simulator import simulate
from mixpe_sim.errors import ConfigError
from mixpe_sim.hardware.counters import STALL_CAUSES
from mixpe_sim.report.bottleneck import bottleneck
from mixpe_sim.runs.fields import energy_fields, hardware_fields, header, provenance, time_fields, traffic_fields
from mixpe_sim.runs.summary import memory_stats
from mixpe_sim.runs.tally import Tally, combine, layer_times, tally_of, without_layers
from mixpe_sim.trace.sink import NULL_SINK, ShiftedSink, TraceSink
from mixpe_sim.units import PS_PER_S
from mixpe_sim.workload.compile import block_class, compile_step
from mixpe_sim.workload.models import ModelSpec
from mixpe_sim.workload.shapes import Phase, StepShape

PREFIX_BLOCKS = 2  # blocks simulated before the steady state
DEFAULT_DECODE_SAMPLES = 6

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Workload:
    model: str = "llama-2-7b"
    batch: int = 1
    prompt: int = 512
    gen: int = 32
    kv_bits: int = 16
    quantize_lm_head: bool = False


@dataclass(frozen=True)
class StepOutcome:
    tally: Tally
    layers_ps: list[float]
    events: int
    memory: dict[str, Any]
    traced_ps: int  # length of the simulation that went to the trace sink (0 if none did)


def _shape(hw: HardwareConfig, wl: Workload, phase: Phase, context: int) -> StepShape:
    seq = context if phase == "prefill" else 1
    return StepShape.uniform(phase=phase, batch=wl.batch, seq=seq, context=context, kv_bits=wl.kv_bits,
                             activation_bits=hw.quant.activation_bits, quantize_lm_head=wl.quantize_lm_head)


def extrapolates_blocks(model: ModelSpec, exact: bool) -> bool:
    return not exact and model.layers > PREFIX_BLOCKS + 1


def simulate_step(hw: HardwareConfig, model: ModelSpec, wl: Workload, phase: Phase, context: int,
                  exact: bool, trace: TraceSink = NULL_SINK) -> StepOutcome:
    """One forward step over all blocks of `wl.batch` equal sequences (see simulate_shape)."""
    return simulate_shape(hw, model, _shape(hw, wl, phase, context), exact, trace, f"{phase} step, context {context}")


def simulate_shape(hw: HardwareConfig, model: ModelSpec, shape: StepShape, exact: bool,
                   trace: TraceSink = NULL_SINK, label: str = "step") -> StepOutcome:
    """One forward step over all blocks, for any batch of sequences (serving mixes prefill chunks
    and decodes in one step).

    Default mode: blocks of the same precision class compile to identical programs, so the step is
    T(prefix) + sum over the remaining blocks of the steady-state cost of their class, where a
    class's cost is T(prefix + one block of that class) - T(prefix). `exact` simulates every block.
    The collector stays paused for the whole step (collector.py): paused only around compile and
    simulation, it traversed the live program's 10^5-entry columns between them, 13 ms a step.
    """
    with collector_paused():
        return _simulate_shape(hw, model, shape, exact, trace, label)


def _simulate_shape(hw: HardwareConfig, model: ModelSpec, shape: StepShape, exact: bool, trace: TraceSink,
                    label: str) -> StepOutcome:
    if not extrapolates_blocks(model, exact):
        program = compile_step(model, hw, shape)
        if trace.enabled:
            trace.instant("controller", f"{label}, every block simulated", 0)
        raw = simulate(hw, program, trace)
        tally = tally_of(hw, program, raw)
        return StepOutcome(without_layers(tally), layer_times(tally), raw.events, memory_stats(hw, raw),
                           raw.time_ps if trace.enabled else 0)
    prefix = list(range(PREFIX_BLOCKS))
    representative: dict[tuple[tuple[int, int], ...], int] = {}
    for layer in range(PREFIX_BLOCKS, model.layers):
        representative.setdefault(block_class(hw, model, layer), layer)
    base_program = compile_step(model, hw, shape, prefix)
    base_raw = simulate(hw, base_program, NULL_SINK)
    base = tally_of(hw, base_program, base_raw)
    events = base_raw.events
    delta: dict[tuple[tuple[int, int], ...], tuple[Tally, float]] = {}
    memory: dict[str, Any] = {}
    traced_ps = 0
    for cls, layer in representative.items():
        program = compile_step(model, hw, shape, [*prefix, layer])
        step_trace = trace if not delta else NULL_SINK  # the first representative program is traced
        if step_trace.enabled:
            step_trace.instant("controller", f"{label}: blocks {[*prefix, layer]} "
                               f"simulated, the other {model.layers - PREFIX_BLOCKS - 1} extrapolated", 0)
        raw = simulate(hw, program, step_trace)
        traced_ps = traced_ps or (raw.time_ps if step_trace.enabled else 0)
        grown = tally_of(hw, program, raw)
        events += raw.events
        memory = memory or memory_stats(hw, raw)
        step_delta = combine([(1.0, without_layers(grown)), (-1.0, without_layers(base))])
        delta[cls] = (step_delta, grown[f"layer.{layer}"])
    classes = [block_class(hw, model, layer) for layer in range(PREFIX_BLOCKS, model.layers)]
    tally = combine([(1.0, without_layers(base)), *((1.0, delta[cls][0]) for cls in classes)])
    layers = layer_times(base) + [delta[cls][1] for cls in classes]
    return StepOutcome(tally, layers, events, memory, traced_ps)


def decode_contexts(wl: Workload) -> list[int]:
    """KV length of each decode step: step i (1-based) attends over prompt + i tokens."""
    return [wl.prompt + i for i in range(1, wl.gen)]


def sample_points(contexts: list[int], samples: int) -> list[int]:
    if len(contexts) <= samples:
        return list(contexts)
    last = len(contexts) - 1
    picks = sorted({round(i * last / (samples - 1)) for i in range(samples)})
    return [contexts[i] for i in picks]


def interpolate(sampled: dict[int, Tally], context: int) -> Tally:
    points = sorted(sampled)
    if context in sampled:
        return sampled[context]
    upper = next(p for p in points if p > context)
    lower = max(p for p in points if p < context)
    w = (context - lower) / (upper - lower)
    return combine([(1.0 - w, sampled[lower]), (w, sampled[upper])])


def run_request(hw: HardwareConfig, model: ModelSpec, wl: Workload, exact: bool = False,
                decode_samples: int = DEFAULT_DECODE_SAMPLES, trace: TraceSink = NULL_SINK,
                progress: Progress | None = None, workers: int = 1) -> dict[str, Any]:
    """Prefill, then the decode steps (every one with `exact`, else a few, interpolated).

    Every step is simulated from an idle machine, so the steps are independent: with `workers` > 1
    they run in that many local processes, except the ones a trace records (the prefill and the
    first decode step), which run here. The result is the same for any number of workers.
    """
    if model.family == "paper-linear":
        raise ConfigError("--model", "", f"'{model.name}' is a linear-only paper workload without prompt or "
                          "decode; use it with `mixpe-sim step` or `mixpe-sim compare`")
    started = time.perf_counter()
    report = progress or (lambda _label: None)
    contexts = decode_contexts(wl)
    chosen = contexts if exact else sample_points(contexts, decode_samples)
    steps: list[tuple[Phase, int, str]] = [("prefill", wl.prompt, f"prefill, prompt {wl.prompt}")]
    steps += [("decode", context, f"decode step {index}/{len(chosen)}, context {context}")
              for index, context in enumerate(chosen, 1)]
    traced = steps[:2] if trace.enabled else []  # the trace shows the prefill and the first decode step
    outcomes: dict[tuple[Phase, int], StepOutcome] = {}
    with _simulated(hw, model, wl, exact, steps[len(traced):], workers, report) as untraced:
        for phase, context, label in traced:
            report(label)
            sink = trace if phase == "prefill" else ShiftedSink(trace, outcomes[("prefill", wl.prompt)].traced_ps)
            outcomes[(phase, context)] = simulate_step(hw, model, wl, phase, context, exact, sink)
        outcomes.update(zip([(phase, context) for phase, context, _ in steps[len(traced):]], untraced, strict=True))
    prefill = outcomes[("prefill", wl.prompt)]
    sampled = {context: outcomes[("decode", context)].tally for context in chosen}
    events = sum(outcome.events for outcome in outcomes.values())
    decode_memory = outcomes[("decode", chosen[-1])].memory if chosen else {}
    decode_steps = [interpolate(sampled, c) for c in contexts]
    return _request_result(hw, model, wl, exact, prefill, decode_steps, contexts, sorted(sampled), events,
                           decode_memory, time.perf_counter() - started)


@contextmanager
def _simulated(hw: HardwareConfig, model: ModelSpec, wl: Workload, exact: bool,
               steps: list[tuple[Phase, int, str]], workers: int,
               report: Progress) -> Iterator[Iterator[StepOutcome]]:
    """The outcomes of (phase, context, label) steps, in order: simulated here as they are asked for
    (one worker), or started at once in a pool of `workers` processes, terminated when the block is
    left."""
    if workers <= 1 or len(steps) <= 1:
        def one_by_one() -> Iterator[StepOutcome]:
            for phase, context, label in steps:
                report(label)
                yield simulate_step(hw, model, wl, phase, context, exact)
        yield one_by_one()
        return
    from mixpe_sim.workers import started

    jobs = [(hw, model, wl, phase, context, exact) for phase, context, _ in steps]
    with started(_step_job, jobs, min(workers, len(steps))) as finished:
        def as_they_come() -> Iterator[StepOutcome]:
            for (_, _, label), outcome in zip(steps, finished, strict=True):
                report(label)
                yield outcome
        yield as_they_come()


def _step_job(job: tuple[HardwareConfig, ModelSpec, Workload, Phase, int, bool]) -> StepOutcome:
    hw, model, wl, phase, context, exact = job
    return simulate_step(hw, model, wl, phase, context, exact)


def _request_result(hw: HardwareConfig, model: ModelSpec, wl: Workload, exact: bool, prefill: StepOutcome,
                    steps: list[Tally], contexts: list[int], simulated: list[int], events: int,
                    decode_memory: dict[str, Any], wall_s: float) -> dict[str, Any]:
    decode_total = combine((1.0, s) for s in steps)
    total = combine([(1.0, prefill.tally), (1.0, decode_total)])
    ttft_s = prefill.tally["time_ps"] / PS_PER_S
    step_s = [s["time_ps"] / PS_PER_S for s in steps]
    e2e_s = ttft_s + sum(step_s)
    return {
        **header("request", e2e_s),
        "phases": {"prefill": _phase_figures(prefill.tally), "decode": _phase_figures(decode_total)},
        "ttft_s": ttft_s,
        # gen 1 has no decode step, so no time per output token: None, and the note says why
        "tpot_s": sum(step_s) / len(step_s) if step_s else None,
        "tpot_note": "" if step_s else "gen 1: the only output token comes from prefill; no decode step, no TPOT",
        "tpot_per_step_s": step_s,
        "e2e_s": e2e_s,
        "tokens_per_s": wl.batch * wl.gen / e2e_s if e2e_s else 0.0,
        **energy_fields(total),
        **traffic_fields(hw, total, e2e_s),
        **time_fields(total),
        "per_op": _per_op(prefill.tally, "prefill") + _per_op(decode_total, "decode"),
        "by_group": {"prefill": _by_group(prefill.tally), "decode": _by_group(decode_total)},
        "per_layer": {"prefill_s": [v / PS_PER_S for v in prefill.layers_ps]},
        "decode_steps": [{"context": c, "step_s": s, "simulated": c in simulated}
                         for c, s in zip(contexts, step_s, strict=True)],
        "memory": {"prefill": prefill.memory, "decode": decode_memory},
        **hardware_fields(hw),
        "bottleneck": {"prefill": bottleneck(hw, prefill.tally),
                       **({"decode": bottleneck(hw, decode_total)} if steps else {})},
        "mode": {"exact": exact, "block_extrapolation": extrapolates_blocks(model, exact),
                 "decode_steps_simulated": simulated, "attention": hw.attention},
        **provenance(hw, asdict(wl), asdict(model), events, wall_s),
    }


def _phase_figures(tally: Tally) -> dict[str, float]:
    """Time and energy of one phase (prefill, or all decode steps together)."""
    return {"time_s": tally.get("time_ps", 0.0) / PS_PER_S,
            "energy_j": sum(v for k, v in tally.items() if k.startswith("energy."))}


OP_GROUPS = ("linear", "attention", "vector")


def _group_of(tally: Tally, name: str) -> str:
    return next((g for g in OP_GROUPS if tally.get(f"op.{name}.in.{g}", 0.0) > 0.5), "linear")


def _by_group(tally: Tally) -> dict[str, dict[str, float]]:
    """Busy and stalled time, MACs and DRAM bytes of the linear layers, attention and vector ops.

    Times are per unit: the array's and the vector unit's work overlap, so the groups' times add up
    to more than the step time when both are busy."""
    return {g: {"busy_s": tally.get(f"group.{g}.busy_ps", 0.0) / PS_PER_S,
                "stall_s": tally.get(f"group.{g}.stall_ps", 0.0) / PS_PER_S,
                "macs": round(tally.get(f"group.{g}.macs", 0.0)),
                "dram_bytes": round(tally.get(f"group.{g}.dram_bytes", 0.0))} for g in OP_GROUPS}


def _per_op(tally: Tally, phase: str) -> list[dict[str, Any]]:
    # ties (e.g. the two norms of a block) are broken by name: set order depends on the hash seed
    names = sorted({k.split(".")[1] for k in tally if k.startswith("op.")},
                   key=lambda n: (-(tally[f"op.{n}.busy_ps"] + tally[f"op.{n}.stall_ps"]), n))
    return [{
        "phase": phase,
        "op": name,
        "group": _group_of(tally, name),
        "calls": round(tally[f"op.{name}.calls"]),
        "busy_s": tally[f"op.{name}.busy_ps"] / PS_PER_S,
        "stall_s": tally[f"op.{name}.stall_ps"] / PS_PER_S,
        "macs": round(tally[f"op.{name}.macs"]),
        "dequant_ops": round(tally[f"op.{name}.dequant_ops"]),
        "dram_bytes": round(tally[f"op.{name}.dram_bytes"]),
        **{f"stall_{cause}_s": tally[f"op.{name}.stall.{cause}"] / PS_PER_S for cause in STALL_CAUSES},
    } for name in names]


def run_step(hw: HardwareConfig, model: ModelSpec, wl: Workload, phase: Phase, context: int, exact: bool,
             trace: TraceSink = NULL_SINK) -> dict[str, Any]:
    """`mixpe-sim step`: one forward step over all layers."""
    started = time.perf_counter()
    outcome = simulate_step(hw, model, wl, phase, context, exact, trace)
    t = outcome.tally
    step_s = t["time_ps"] / PS_PER_S
    tokens = wl.batch * (context if phase == "prefill" else 1)
    return {
        **header("step", step_s),
        "step_s": step_s,
        "phase": phase,
        "context": context,
        "tokens_per_s": tokens / step_s if step_s else 0.0,
        **energy_fields(t),
        **traffic_fields(hw, t, step_s),
        **time_fields(t),
        "per_op": _per_op(t, phase),
        "by_group": _by_group(t),
        "per_layer_s": [v / PS_PER_S for v in outcome.layers_ps],
        "memory": outcome.memory,
        **hardware_fields(hw),
        "bottleneck": {phase: bottleneck(hw, t)},
        "mode": {"exact": exact, "block_extrapolation": extrapolates_blocks(model, exact),
                 "attention": hw.attention},
        **provenance(hw, asdict(wl), asdict(model), outcome.events, time.perf_counter() - started),
    }
