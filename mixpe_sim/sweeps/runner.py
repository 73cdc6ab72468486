"""One sweep point, run in whatever process the executor chose: a job dict in, a result row out.

Top-level and free of shared state, so a process pool or a Dask worker can call it. Errors become
part of the row: a point with an invalid value is recorded as failed and the sweep goes on.
"""

from __future__ import annotations

import time
import traceback
from typing import Any

from mixpe_sim.errors import ConfigError, MixpeError
from mixpe_sim.report.files import ensure_finite

METRIC_KEYS = ("ttft_s", "tpot_s", "tokens_per_s", "energy_j", "dram_bytes_read", "dram_bytes_written",
               "dram_bw_utilization", "pe_utilization", "events")


def run_point(job: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result = _simulate(job)
        ensure_finite(result)
    except MixpeError as exc:
        return {"status": "failed", "error": str(exc), "wall_s": time.perf_counter() - started}
    except Exception as exc:  # an engine bug must not take the other points down; keep where it happened
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return {"status": "error", "error": f"{type(exc).__name__}: {exc} ({where.filename}:{where.lineno})",
                "wall_s": time.perf_counter() - started}
    metrics = {"latency_s": result["time_s"]}
    metrics.update({key: result[key] for key in METRIC_KEYS if key in result})
    # the full result is kept (load_sweep gives it back); its wall time is the row's, so that rows of
    # equal points are equal whichever worker ran them
    stored = {key: value for key, value in result.items() if key != "wall_s"}
    return {"status": "ok", "metrics": metrics, "result": stored, "wall_s": time.perf_counter() - started}


def _simulate(job: dict[str, Any]) -> dict[str, Any]:
    from mixpe_sim.config import load_hardware
    from mixpe_sim.runs.gemm import run_gemm
    from mixpe_sim.runs.llm import Workload, run_request, run_step
    from mixpe_sim.workload.limits import check_work, gemm_work, request_work, step_work
    from mixpe_sim.workload.models import check_context, load_model

    hw = load_hardware(job.get("hw"), job.get("memory"), list(job["set"].items()))
    max_work = _positive(job, "max_work") if "max_work" in job else None
    command = job["command"]
    if command == "gemm":
        m, n, k = _positive(job, "m"), _positive(job, "n"), _positive(job, "k")
        check_work(hw, gemm_work(hw, m, n, k), max_work, "max_work")
        return run_gemm(hw, m, n, k)
    model_name = str(job.get("model", "llama-2-7b"))
    model = load_model(model_name)
    exact = bool(job.get("exact", False))
    kv_bits = _choice(job, "kv_bits", (4, 8, 16), 16)
    common = {"model": model_name, "batch": _positive(job, "batch", 1), "kv_bits": kv_bits,
              "quantize_lm_head": bool(job.get("quantize_lm_head", False))}
    if command == "step":
        phase = _choice(job, "phase", ("prefill", "decode"))
        context = _positive(job, "context", 2048)
        prompt = context if phase == "prefill" else max(1, context - 1)
        check_context(model, context, "sweep point: context", bool(job.get("allow_long_context", False)))
        tokens = context if phase == "prefill" else 1
        check_work(hw, step_work(hw, model, common["batch"], tokens, context, exact), max_work, "max_work")
        return run_step(hw, model, Workload(prompt=prompt, gen=1, **common), phase, context, exact)
    wl = Workload(prompt=_positive(job, "prompt", 512), gen=_positive(job, "gen", 32), **common)
    check_context(model, wl.prompt + wl.gen - 1, "sweep point: prompt + gen - 1",
                  bool(job.get("allow_long_context", False)))
    check_work(hw, request_work(hw, model, wl.batch, wl.prompt, wl.gen, exact), max_work, "max_work")
    samples = _positive(job, "decode_samples", 6)
    if samples < 2:
        raise ConfigError("sweep point", "decode_samples", f"needs at least 2, got {samples}")
    return run_request(hw, model, wl, exact=exact, decode_samples=samples)


def _positive(job: dict[str, Any], key: str, default: int | None = None) -> int:
    value = job.get(key, default)
    if type(value) is not int or value <= 0:
        raise ConfigError("sweep point", key, f"must be a positive whole number, got {value!r}")
    return value


def _choice(job: dict[str, Any], key: str, allowed: tuple[Any, ...], default: Any = None) -> Any:
    value = job.get(key, default)
    if value not in allowed:
        raise ConfigError("sweep point", key, f"got {value!r}; allowed: {', '.join(map(str, allowed))}")
    return value
