"""The Python API: one documented face, typed results equal to the CLI's JSON, DataFrames, figures."""

from __future__ import annotations

import ast
import doctest
import json
import sys
from dataclasses import fields
from pathlib import Path

import pytest

import mixpe_sim as ms
from mixpe_sim import api
from mixpe_sim.cli import main
from mixpe_sim.config import models as config_models
from tests.conftest import DATA, REPO

TINY = str(DATA / "tiny-llama.json")


def cli_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def comparable(result: dict) -> dict:
    return {k: v for k, v in result.items() if k != "wall_s"}


def test_api_results_equal_the_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    gemm = ms.simulate_gemm(ms.load_hardware("mixpe-w4a16", memory="hbm3"), 16, 512, 256)
    assert comparable(gemm.to_dict()) == comparable(cli_json(capsys, ["gemm", "--memory", "hbm3", "--m", "16",
                                                                     "--n", "512", "--k", "256"]))
    step = ms.simulate_step("dc-mixpe-w4a16", TINY, "decode", 200, batch=2)
    assert comparable(step.to_dict()) == comparable(cli_json(capsys, [
        "step", "--hw", "dc-mixpe-w4a16", "--model", TINY, "--phase", "decode", "--context", "200", "--batch", "2"]))
    request = ms.simulate_request("mixpe-w4a16", ms.load_model(TINY), prompt=32, gen=3)
    assert comparable(request.to_dict()) == comparable(cli_json(capsys, [
        "run", "--model", TINY, "--prompt", "32", "--gen", "3"]))


@pytest.mark.parametrize("kind", ["gemm", "step", "request"])
def test_every_result_key_is_a_typed_attribute_and_the_shared_keys_mean_the_same(kind: str) -> None:
    result = {"gemm": lambda: ms.simulate_gemm("mixpe-w4a16", 8, 256, 256),
              "step": lambda: ms.simulate_step("mixpe-w4a16", TINY, "prefill", 64),
              "request": lambda: ms.simulate_request("mixpe-w4a16", TINY, 16, 2)}[kind]()
    data = result.to_dict()
    assert set(data) == {f.name for f in fields(result) if f.metadata.get("json", True)}
    assert data["kind"] == kind and data["schema_version"] == 1
    assert set(data["config"]) == {"hardware", "model", "workload"}
    assert data["time_s"] == pytest.approx(data["compute_s"] + sum(data["stall_breakdown_s"].values()), rel=1e-9)
    assert data["time_breakdown_s"] == {"compute": data["compute_s"], **data["stall_breakdown_s"]}
    assert data["energy_j"] == pytest.approx(sum(data["energy_breakdown_j"].values()))
    assert result["time_s"] == result.time_s and repr(result).startswith(type(result).__name__)
    assert "<table>" in result._repr_html_()
    frame = result.to_frame()
    assert len(frame) == (1 if kind == "gemm" else len(data["per_op"]))


def test_overrides_are_validated_like_set() -> None:
    hw = ms.load_hardware("dc-mixpe-w4a16", overrides={"array.rows": "64", "memory.channels": 16})
    assert hw.array.rows == 64 and hw.memory.channels == 16
    assert hw.with_overrides({"array.cols": 8}).array.cols == 8
    with pytest.raises(ms.ConfigError, match=r"memory\.channels"):
        hw.with_overrides({"memory.channels": -3})
    with pytest.raises(ms.ConfigError, match="nosuch"):
        ms.load_hardware(overrides={"array.nosuch": 1})


def test_traced_step_returns_its_timeline_and_spans_as_data() -> None:
    step = ms.simulate_step("dc-mixpe-w4a16", TINY, "decode", 256, exact=True, trace=True)
    timeline, spans = step.timeline, step.spans
    moved = (timeline["dram_bw_bytes_per_s"] * (timeline["end_s"] - timeline["start_s"])).sum()
    assert moved == pytest.approx(step.dram_bytes_read + step.dram_bytes_written, rel=1e-9)
    ops = spans[(spans.component == "controller") & (spans.lane == "ops")]
    assert set(ops["name"].map(lambda n: n.split(".")[-1])) >= {"qkv_proj", "o_proj"}
    assert "timeline" not in step.to_dict()


def test_figures_leave_the_callers_matplotlib_backend_alone() -> None:
    import matplotlib

    backend = matplotlib.get_backend()
    step = ms.simulate_step("mixpe-w4a16", TINY, "decode", 128, trace=True)
    for figure in (ms.plot_timeline(step), ms.plot_time_breakdown(step), ms.plot_roofline(step)):
        assert type(figure).__name__ == "Figure" and figure.axes
    assert matplotlib.get_backend() == backend
    assert "matplotlib.pyplot" not in sys.modules or backend == matplotlib.get_backend()


def test_sweep_and_load_sweep_give_one_row_per_point_with_the_full_result(tmp_path: Path) -> None:
    spec = {"command": "gemm", "base": {"m": 8, "n": 256, "k": 256}, "grid": {"array.rows": [16, 32]}}
    frame = ms.sweep(spec, out_dir=tmp_path)
    assert list(frame["array.rows"]) == [16, 32] and list(frame["status"]) == ["ok", "ok"]
    assert isinstance(frame["result"][0], ms.GemmResult)
    assert frame["result"][1].config["hardware"]["array"]["rows"] == 32
    assert ms.load_sweep(tmp_path).equals(frame)


def test_docstring_examples_run(tmp_path: Path) -> None:
    for module in (api, config_models):
        failures, tried = doctest.testmod(module, extraglobs={"tmp_dir": tmp_path}, optionflags=doctest.ELLIPSIS)
        assert failures == 0 and tried > 0, module.__name__
    for name in ms.__all__:
        obj = getattr(ms, name)
        if callable(obj) and not isinstance(obj, type) and name[0] != "_":
            assert obj.__doc__, f"mixpe_sim.{name} has no docstring"


# The architecture, read from the source: config -> workload -> arch -> hardware -> engine -> results/runs
# -> report/cli. A package may import only those before it (and the leaf utilities).
LAYERS = {"config": 0, "workload": 1, "arch": 1, "hardware": 2, "engine": 3}
UTILITIES = {"units", "errors", "collector", "_version", "trace", "energy"}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mixpe_sim."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("mixpe_sim.")}
    return found


def test_the_import_graph_follows_the_pipeline() -> None:
    package = REPO / "mixpe_sim"
    for layer, rank in LAYERS.items():
        for path in (package / layer).rglob("*.py"):
            for imported in imports_of(path) - UTILITIES - {layer}:
                assert LAYERS.get(imported, 99) <= rank, f"{path.relative_to(REPO)} imports mixpe_sim.{imported}"
    assert "hardware" not in {m for p in (package / "workload").rglob("*.py") for m in imports_of(p)}
    assert "cli" not in imports_of(package / "cli_commands.py")
    assert "engine" not in {m for p in (package / "report").rglob("*.py") for m in imports_of(p)}
