"""Property-based fuzzing of every file type a user hands us (issue 17).

Property: loading a mutated hardware, memory, energy, model or sweep file either succeeds with a config
whose every number is finite, or raises one MixpeError; nothing else escapes. Mutations walk the real
shipped files, so fields added later are covered without touching this test. Small budget: default suite.
"""

from __future__ import annotations

import copy
import json
import math
import os
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixpe_sim.config.loader import load_hardware, load_yaml_file
from mixpe_sim.config.presets import preset_dir
from mixpe_sim.config.validate import validate_file
from mixpe_sim.errors import MixpeError
from mixpe_sim.sweeps.spec import expand, load_sweep
from mixpe_sim.workload.models import load_model, model_files

# FUZZ_EXAMPLES=2000 for a longer hunt; the default keeps the suite fast
BUDGET = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "40")), deadline=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture])

ODD_VALUES = st.one_of(
    st.booleans(), st.none(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["no", "yes", "5e8", "1e300", ".inf", "-.nan", "2024-01-01", "0x10", "~"]),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


SCALES = [0.0, 1e-12, 1e-6, 1e-3, 0.5, 2.0, 7.0, 1e3, 1e6, 1e12]


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path (mappings and list items) of a parsed file."""
    found = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += _paths(value, (*prefix, index))
    return found


def _mutate(data: Any, path: tuple[Any, ...], action: str, value: Any) -> Any:
    data = copy.deepcopy(data)
    node = data
    for part in path[:-1]:
        node = node[part]
    if action == "delete" and isinstance(node, dict):
        del node[path[-1]]
    elif action == "add" and isinstance(node, dict):
        node[f"{path[-1]}_extra"] = value
    elif action == "scale":  # valid-looking extremes: the same key, its number scaled
        old = node[path[-1]]
        if isinstance(old, int | float) and not isinstance(old, bool) and isinstance(value, float):
            scaled = old * value
            node[path[-1]] = int(scaled) if isinstance(old, int) and math.isfinite(scaled) else scaled
    else:
        node[path[-1]] = value
    return data


def _all_finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_all_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_all_finite(v) for v in value)
    return True


SHIPPED = sorted(p for kind in ("hardware", "memory", "energy") for p in preset_dir(kind).glob("*.yaml"))


@st.composite
def mutated_file(draw: st.DrawFn) -> tuple[Path, Any]:
    source = draw(st.sampled_from(SHIPPED))
    data = yaml.safe_load(source.read_text())
    if source.parent.name == "hardware":  # inline a memory and the energy table so their keys are fuzzed too
        data["memory"] = yaml.safe_load(draw(st.sampled_from(sorted(preset_dir("memory").glob("*.yaml")))).read_text())
        data["energy"] = yaml.safe_load((preset_dir("energy") / f"{data['energy']}.yaml").read_text())
    paths = _paths(data)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["set", "delete", "add", "scale", "scale", "scale"]))
        value = draw(st.sampled_from(SCALES)) if action == "scale" else draw(ODD_VALUES)
        data = _mutate(data, path, action, value)
        paths = _paths(data) or paths
        if not paths:
            break
    return source, data


@BUDGET
@given(mutated_file())
def test_mutated_config_files_load_or_fail_in_one_line(tmp_path: Path, case: tuple[Path, Any]) -> None:
    source, data = case
    path = tmp_path / source.name
    try:
        path.write_text(yaml.safe_dump(data, allow_unicode=True))
    except yaml.YAMLError:
        return  # not representable as YAML: nothing a user could write
    # nested preset names (memory: flat) resolve against the shipped directory
    if source.parent.name == "hardware":
        for key in ("memory", "energy"):
            if isinstance(data, dict) and isinstance(data.get(key), str):
                data[key] = str(preset_dir(key) / f"{data[key]}.yaml")
        path.write_text(yaml.safe_dump(data, allow_unicode=True))
    try:
        message = validate_file(path)
    except MixpeError as exc:
        assert "\n" not in str(exc)
        return
    assert message.startswith("ok: ")
    if source.parent.name == "hardware":
        assert _all_finite(load_hardware(str(path)).model_dump())


@BUDGET
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_escape_as_tracebacks(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "any.yaml"
    path.write_bytes(content)
    for load in (load_yaml_file, validate_file, load_sweep):
        try:
            load(path)
        except MixpeError as exc:
            assert "\n" not in str(exc)
    json_path = tmp_path / "any.json"
    json_path.write_bytes(content)
    try:
        load_model(str(json_path))
    except MixpeError as exc:
        assert "\n" not in str(exc)


MODELS = sorted(model_files().values())


@BUDGET
@given(st.sampled_from(MODELS), st.data())
def test_mutated_model_files_load_or_fail_in_one_line(tmp_path: Path, source: Path, data: st.DataObject) -> None:
    config = json.loads(source.read_text())
    key = data.draw(st.sampled_from(sorted(config)))
    config = _mutate(config, (key,), data.draw(st.sampled_from(["set", "delete"])), data.draw(ODD_VALUES))
    path = tmp_path / "config.json"
    try:
        path.write_text(json.dumps(config, allow_nan=True))
    except (TypeError, ValueError):
        return
    try:
        model = load_model(str(path))
    except MixpeError as exc:
        assert "\n" not in str(exc)
        return
    assert model.heads * model.head_dim == model.hidden and model.heads % model.kv_heads == 0


SWEEP = {"command": "run", "base": {"model": "llama-2-7b", "prompt": 64, "gen": 4, "set": {"array.rows": 16}},
         "grid": {"array.cols": [16, 32], "batch": [1, 2]}, "zip": [{"prompt": [64, 128], "gen": [2, 4]}]}


@BUDGET
@given(st.data())
def test_mutated_sweep_files_load_or_fail_in_one_line(tmp_path: Path, data: st.DataObject) -> None:
    path_in = data.draw(st.sampled_from(_paths(SWEEP)))
    spec_data = _mutate(SWEEP, path_in, data.draw(st.sampled_from(["set", "delete", "add"])), data.draw(ODD_VALUES))
    path = tmp_path / "sweep.yaml"
    try:
        path.write_text(yaml.safe_dump(spec_data, allow_unicode=True))
    except yaml.YAMLError:
        return
    try:
        points = expand(load_sweep(path))
    except MixpeError as exc:
        assert "\n" not in str(exc)
        return
    assert all(json.dumps(point.job, allow_nan=False) for point in points)  # every job is serialisable


@BUDGET
@given(mutated_file())
def test_valid_mutated_hardware_simulates_or_fails_in_one_line(tmp_path: Path, case: tuple[Path, Any]) -> None:
    """A config that validates must simulate a small GEMM with finite results, or refuse in one line."""
    from mixpe_sim.report.files import ensure_finite
    from mixpe_sim.runs.gemm import run_gemm
    from mixpe_sim.workload.limits import check_work, gemm_work

    source, data = case
    if source.parent.name != "hardware" or not isinstance(data, dict):
        return
    for key in ("memory", "energy"):
        if isinstance(data.get(key), str):
            data[key] = str(preset_dir(key) / f"{data[key]}.yaml")
    path = tmp_path / "hw.yaml"
    try:
        path.write_text(yaml.safe_dump(data, allow_unicode=True))
    except yaml.YAMLError:
        return
    try:
        hw = load_hardware(str(path))
        check_work(hw, gemm_work(hw, 16, 256, 256), None, "--max-work")
        ensure_finite(run_gemm(hw, 16, 256, 256))
    except MixpeError as exc:
        assert "\n" not in str(exc)
