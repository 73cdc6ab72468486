"""`mixpe-sim compare`: several accelerators on the same workloads, normalized to a reference.

Paper workloads (linear layers only, M = 64) are one forward pass each; LLM models run a whole
request (prefill + decode) and are compared on end-to-end time and energy.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from mixpe_sim import __version__
from mixpe_sim.arch.area import total_area_mm2
from mixpe_sim.config import load_hardware
from mixpe_sim.config.models import HardwareConfig
from mixpe_sim.errors import ConfigError
from mixpe_sim.runs.fields import SCHEMA_VERSION
from mixpe_sim.runs.llm import Workload, run_request, run_step
from mixpe_sim.runs.sizing import size_to_area
from mixpe_sim.workload.models import load_model

PAPER_HARDWARE = ("mixpe-w4a16", "mixpe-w4a8", "fp16", "int8", "bitfusion", "ant", "olaccel")
# --iso-area without --hw: the MixPE W4A16 design and every baseline re-sized to its area
ISO_AREA_HARDWARE = ("mixpe-w4a16", "fp16", "int8", "mixpe-w4a8", "bitfusion", "ant", "olaccel")
PAPER_MODELS = ("paper-opt-6.7b", "paper-llama-2-13b", "paper-vit-b", "paper-vit-h")
DEFAULT_REFERENCE = "fp16"


def measure(hw: HardwareConfig, model_name: str, wl: Workload, exact: bool) -> dict[str, Any]:
    model = load_model(model_name)
    if model.family == "paper-linear":
        r = run_step(hw, model, wl, "prefill", model.paper_rows, exact)
        time_s = r["step_s"]
    else:
        r = run_request(hw, model, wl, exact=exact)
        time_s = r["e2e_s"]
    return {"time_s": time_s, "energy_j": r["energy_j"], "energy_breakdown_j": r["energy_breakdown_j"],
            "events": r["events"]}


def run_compare(hw_specs: list[str], models: list[str], wl: Workload, reference: str = DEFAULT_REFERENCE,
                memory: str | None = None, overrides: list[tuple[str, Any]] | None = None, exact: bool = False,
                progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    report = progress or (lambda _label: None)
    configs = {}
    for spec, option in [*((spec, "--hw") for spec in hw_specs), (reference, "--reference")]:
        hw = load_hardware(spec, memory, overrides, option=option)
        configs.setdefault(hw.name, hw)
    ref_name = load_hardware(reference, memory, overrides).name
    if len(configs) < 2:
        raise ConfigError("--hw", "", "compare needs at least two different hardware configs")
    measured: dict[tuple[str, str], dict[str, Any]] = {}
    for hw_name, hw in configs.items():
        for model_name in models:
            report(f"{hw_name} on {model_name}")
            measured[(hw_name, model_name)] = measure(hw, model_name, wl, exact)
    rows = []
    for model_name in models:
        ref = measured[(ref_name, model_name)]
        for hw_name in configs:
            m = measured[(hw_name, model_name)]
            rows.append({"hw": hw_name, "model": model_name, "time_s": m["time_s"], "energy_j": m["energy_j"],
                         "norm_time": m["time_s"] / ref["time_s"], "norm_energy": m["energy_j"] / ref["energy_j"],
                         "energy_breakdown_j": m["energy_breakdown_j"], "area_mm2": total_area_mm2(configs[hw_name])})
    mean = _means(rows, list(configs))
    for hw_name, hw in configs.items():
        mean[hw_name]["area_mm2"] = total_area_mm2(hw)
    return {
        "kind": "compare",
        "schema_version": SCHEMA_VERSION,
        "reference": ref_name,
        "rows": rows,
        "mean": mean,
        "events": sum(m["events"] for m in measured.values()),
        "wall_s": time.perf_counter() - started,
        "config": {"hardware": {name: hw.model_dump(mode="json") for name, hw in configs.items()},
                   "models": models, "workload": {"batch": wl.batch, "prompt": wl.prompt, "gen": wl.gen,
                                                  "kv_bits": wl.kv_bits}, "exact": exact},
        "version": __version__,
    }


def run_iso_area(hw_specs: list[str], model_name: str, wl: Workload, reference: str | None = None,
                 memory: str | None = None, overrides: list[tuple[str, Any]] | None = None, exact: bool = False,
                 progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The first design as it is; every other one re-sized to its area (runs/sizing.py); one LLM request
    on each, reported per phase. Normalized to `reference` (a sized design's name, e.g. "fp16-iso"), by
    default the first design."""
    started = time.perf_counter()
    report = progress or (lambda _label: None)
    model = load_model(model_name)
    if model.family == "paper-linear":
        raise ConfigError("--model", "", f"'{model_name}' has no prefill or decode; --iso-area needs an LLM model")
    loaded = [load_hardware(spec, memory, overrides) for spec in dict.fromkeys(hw_specs)]
    if len(loaded) < 2:
        raise ConfigError("--hw", "", "--iso-area needs the design whose area is the target and at least one other")
    target = loaded[0]
    target_area = total_area_mm2(target)
    designs: dict[str, tuple[HardwareConfig, dict[str, Any]]] = {
        target.name: (target, {"area_mm2": target_area, "target_area_mm2": target_area, "resized": False})}
    for hw in loaded[1:]:
        report(f"sizing {hw.name} to {target_area:.2f} mm^2")
        sized = size_to_area(hw, target_area, model, wl.prompt)
        designs[sized.hw.name] = (sized.hw, {**sized.describe(), "resized": True})
    ref_name = reference or target.name
    if ref_name not in designs:
        raise ConfigError("--reference", ref_name, f"not among the compared designs (allowed: {', '.join(designs)})")
    measured = {}
    for name, (hw, _) in designs.items():
        report(f"{name} on {model_name}")
        measured[name] = run_request(hw, model, wl, exact=exact)
    ref = measured[ref_name]
    rows = [_iso_row(name, model_name, measured[name], ref, sizing) for name, (_, sizing) in designs.items()]
    mean = _means(rows, list(designs))
    for row in rows:
        mean[row["hw"]].update({"area_mm2": row["area_mm2"],
                                **{phase: {k: row[phase][k] for k in ("norm_time", "norm_energy")}
                                   for phase in ("prefill", "decode")}})
    return {
        "kind": "compare",
        "schema_version": SCHEMA_VERSION,
        "reference": ref_name,
        "target_area_mm2": target_area,
        "rows": rows,
        "mean": mean,
        "events": sum(m["events"] for m in measured.values()),
        "wall_s": time.perf_counter() - started,
        "config": {"hardware": {name: hw.model_dump(mode="json") for name, (hw, _) in designs.items()},
                   "models": [model_name], "workload": {"batch": wl.batch, "prompt": wl.prompt, "gen": wl.gen,
                                                        "kv_bits": wl.kv_bits}, "exact": exact, "iso_area": True},
        "version": __version__,
    }


def _iso_row(name: str, model_name: str, r: dict[str, Any], ref: dict[str, Any],
             sizing: dict[str, Any]) -> dict[str, Any]:
    phases = {}
    for phase in ("prefill", "decode"):
        mine, base = r["phases"][phase], ref["phases"][phase]
        phases[phase] = {**mine, "norm_time": _ratio(mine["time_s"], base["time_s"]),
                         "norm_energy": _ratio(mine["energy_j"], base["energy_j"])}
    return {"hw": name, "model": model_name, "time_s": r["e2e_s"], "energy_j": r["energy_j"],
            "norm_time": r["e2e_s"] / ref["e2e_s"], "norm_energy": r["energy_j"] / ref["energy_j"],
            "energy_breakdown_j": r["energy_breakdown_j"], "area_mm2": r["area_mm2"],
            "area_breakdown_mm2": r["area_breakdown_mm2"], **phases, "sizing": sizing,
            "bottleneck": {phase: b["summary"] for phase, b in r["bottleneck"].items()}}


def _ratio(value: float, base: float) -> float:
    return value / base if base else 1.0


def _means(rows: list[dict[str, Any]], hardware: list[str]) -> dict[str, dict[str, float]]:
    """Arithmetic mean of the normalized values over models (the paper's "average"), plus geomeans."""
    out = {}
    for hw_name in hardware:
        mine = [r for r in rows if r["hw"] == hw_name]
        times = [r["norm_time"] for r in mine]
        energies = [r["norm_energy"] for r in mine]
        out[hw_name] = {
            "norm_time": sum(times) / len(times),
            "norm_energy": sum(energies) / len(energies),
            "geomean_norm_time": math.exp(sum(math.log(t) for t in times) / len(times)),
            "geomean_norm_energy": math.exp(sum(math.log(e) for e in energies) / len(energies)),
        }
    return out
