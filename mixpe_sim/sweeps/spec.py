"""Sweep files: a base job plus axes (cartesian `grid`, lock-step `zip` groups) over option names or
hardware key paths, expanded into points. Pure functions over plain data.

    command: run                 # run | step | gemm: what each point simulates
    base: {model: llama-2-7b, prompt: 512, gen: 32, set: {quant.group_size: 128}}
    grid:                        # every combination
      array.rows: [16, 32, 64]
      memory: [flat, hbm3]
    zip:                         # one or more groups whose lists advance together
      - {prompt: [128, 2048], gen: [16, 256]}
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from mixpe_sim import __version__
from mixpe_sim.config.loader import load_yaml_file
from mixpe_sim.config.models import Frozen
from mixpe_sim.errors import ConfigError

Command = Literal["run", "step", "gemm"]
COMMON_OPTIONS = ("hw", "memory", "exact", "max_work")
OPTIONS: dict[str, tuple[str, ...]] = {
    "run": ("model", "batch", "prompt", "gen", "kv_bits", "quantize_lm_head", "decode_samples",
            "allow_long_context"),
    "step": ("model", "batch", "phase", "context", "kv_bits", "quantize_lm_head",
             "allow_long_context"),
    "gemm": ("m", "n", "k"),
}
REQUIRED: dict[str, tuple[str, ...]] = {"run": (), "step": ("phase",), "gemm": ("m", "n", "k")}


class SweepSpec(Frozen):
    name: str = "sweep"
    command: Command = "run"
    base: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    zip: list[dict[str, list[Any]]] = Field(default_factory=list)


@dataclass(frozen=True)
class Point:
    index: int
    values: dict[str, Any]  # the swept keys and their values at this point
    job: dict[str, Any]  # everything run_point needs: command, options, hardware overrides
    config_hash: str


def load_sweep(path: Path) -> SweepSpec:
    data = load_yaml_file(path)
    if isinstance(data.get("zip"), dict):  # a single zip group may be written without the list
        data["zip"] = [data["zip"]]
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"])
        raise ConfigError(str(path), key, _allowed_hint(error)) from None
    check_spec(spec, str(path))
    return spec


def _allowed_hint(error: dict[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        return f"unknown key; allowed: {', '.join(SweepSpec.model_fields)}"
    return str(error["msg"])


def _plain_value_problem(value: Any) -> str | None:
    """Why `value` cannot be stored in results.jsonl and compared across reruns, or None if it can."""
    if value is None or isinstance(value, bool | int | str):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value} is not a finite number"
    if isinstance(value, list):
        return next((p for p in map(_plain_value_problem, value) if p), None)
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            return "mapping keys must be text"
        return next((p for p in map(_plain_value_problem, value.values()) if p), None)
    return f"{type(value).__name__} values are not allowed (quote dates and other special YAML values)"


def _check_values(source: str, where: str, key: str, values: list[Any]) -> None:
    for value in values:
        problem = _plain_value_problem(value)
        if problem:
            raise ConfigError(source, f"{where}.{key}", f"{problem} (got {value!r})")
        if key == "set" and not isinstance(value, dict):
            raise ConfigError(source, f"{where}.set", f"must be a mapping of hardware key paths to values, "
                              f"e.g. {{array.rows: 32}} (got {type(value).__name__})")


def check_spec(spec: SweepSpec, source: str) -> None:
    """Axis names must be options of the command or hardware key paths; lists must be usable."""
    for key, value in spec.base.items():
        _check_values(source, "base", key, [value])
    for key, values in spec.grid.items():
        _check_values(source, "grid", key, values)
    for index, group in enumerate(spec.zip):
        for key, values in group.items():
            _check_values(source, f"zip.{index}", key, values)
    allowed = COMMON_OPTIONS + OPTIONS[spec.command]
    axes = [("grid", key, values) for key, values in spec.grid.items()]
    axes += [(f"zip.{i}", key, values) for i, group in enumerate(spec.zip) for key, values in group.items()]
    seen: set[str] = set()
    for where, key, values in [("base", key, None) for key in spec.base] + axes:
        if key != "set" and "." not in key and key not in allowed:
            raise ConfigError(source, f"{where}.{key}", f"not an option of '{spec.command}'; allowed: "
                              f"{', '.join(allowed)}, or a hardware key path such as array.rows")
        if values is not None:
            if not values:
                raise ConfigError(source, f"{where}.{key}", "needs at least one value")
            if key in seen:
                raise ConfigError(source, f"{where}.{key}", "swept twice; each key may appear on one axis")
            seen.add(key)
    for index, group in enumerate(spec.zip):
        lengths = {len(values) for values in group.values()}
        if len(lengths) > 1:
            raise ConfigError(source, f"zip.{index}", f"lists advance together and must have one length, "
                              f"got {sorted(lengths)}")
    missing = [key for key in REQUIRED[spec.command] if key not in spec.base and key not in seen]
    if missing:
        raise ConfigError(source, "base", f"'{spec.command}' needs {', '.join(missing)} (in base or on an axis)")


def expand(spec: SweepSpec) -> list[Point]:
    """Grid axes in file order, then each zip group as one axis; the first axis varies slowest."""
    axes: list[list[dict[str, Any]]] = [[{key: value} for value in values] for key, values in spec.grid.items()]
    for group in spec.zip:
        keys = list(group)
        axes.append([dict(zip(keys, row, strict=True)) for row in zip(*group.values(), strict=True)])
    points = []
    for index, combination in enumerate(itertools.product(*axes)):
        values: dict[str, Any] = {}
        for part in combination:
            values.update(part)
        job = job_for(spec, values)
        points.append(Point(index, values, job, config_hash(job)))
    return points


def job_for(spec: SweepSpec, values: dict[str, Any]) -> dict[str, Any]:
    merged = {**spec.base, **values}
    overrides = dict(merged.pop("set", None) or {})
    overrides.update({key: merged.pop(key) for key in list(merged) if "." in key})
    return {"command": spec.command, **dict(sorted(merged.items())), "set": dict(sorted(overrides.items()))}


def config_hash(job: dict[str, Any]) -> str:
    """Identity of a point: equal jobs (whatever the axis order in the file) on the same simulator
    version have equal hashes; a new version re-runs everything."""
    text = json.dumps({"job": job, "version": __version__}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
