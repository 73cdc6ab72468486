"""The command line as users see it: JSON contracts, exit status 2 with one line on bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mixpe_sim.cli import main
from mixpe_sim.config.presets import preset_dir

GEMM_KEYS = {"cycles", "time_s", "compute_cycles", "stall_cycles", "macs", "dequant_ops", "dram_bytes_read",
             "energy_j", "events", "wall_s"}
REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path | None = None, hash_seed: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if hash_seed is not None:
        env["PYTHONHASHSEED"] = hash_seed
    return subprocess.run([sys.executable, "-m", "mixpe_sim", *args], capture_output=True, text=True,
                          cwd=cwd or REPO, env=env, timeout=300)


def test_gemm_json_has_the_contract_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gemm", "--m", "64", "--n", "512", "--k", "512", "--json"]) == 0
    out = capsys.readouterr().out
    data = json.loads(out)  # exactly one JSON object
    assert set(data) >= GEMM_KEYS
    assert data["macs"] == 64 * 512 * 512
    assert data["config"]["hardware"]["name"] == "mixpe-w4a16" and data["version"]


def test_gemm_human_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gemm", "--m", "64", "--n", "512", "--k", "512"]) == 0
    out = capsys.readouterr().out
    assert "GEMM M=64 N=512 K=512" in out and "dequant ops" in out


@pytest.mark.parametrize("args, expected", [
    (["gemm", "--m", "-1", "--n", "8", "--k", "128"], "must be positive"),
    (["gemm", "--m", "64", "--n", "64", "--k", "100"], "group size 128 does not divide K=100"),
    (["gemm", "--hw", "nope", "--m", "1", "--n", "1", "--k", "128"], "unknown hardware preset 'nope'"),
    (["gemm", "--memory", "hbm9", "--m", "1", "--n", "1", "--k", "128"], "unknown memory preset 'hbm9'"),
    (["gemm", "--set", "array.rows=0", "--m", "1", "--n", "1", "--k", "128"], "array.rows"),
    (["gemm", "--set", "buffers.weight.capacity_bytes=64", "--m", "64", "--n", "4096", "--k", "4096"],
     "buffers.weight.capacity_bytes: too small for one tile"),
    (["run", "--model", "gpt-7"], "unknown model 'gpt-7'"),
    (["run", "--out", "pyproject.toml"], "'pyproject.toml' exists and is not a directory"),
    (["sweep", "any.yaml", "--out", "pyproject.toml/results"], "cannot create or write into 'pyproject.toml/results'"),
])
def test_bad_input_exits_2_with_one_line(args: list[str], expected: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_bad_config_file_exits_2_naming_file_and_key(tmp_path: Path) -> None:
    data = yaml.safe_load((preset_dir("hardware") / "mixpe-w4a16.yaml").read_text())
    data["quant"]["group_sise"] = 64
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    result = run_cli("gemm", "--hw", str(path), "--m", "64", "--n", "64", "--k", "128", "--json")
    assert result.returncode == 2
    line = result.stderr.strip()
    assert "\n" not in line
    assert str(path) in line and "quant.group_sise" in line and "allowed: " in line and "group_size" in line


def test_unknown_model_type_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "mamba", "hidden_size": 8, "num_hidden_layers": 1}))
    result = run_cli("step", "--phase", "decode", "--model", str(path))
    assert result.returncode == 2
    assert "unsupported model type 'mamba'" in result.stderr


def test_validate_and_list(tmp_path: Path) -> None:
    ok = run_cli("validate", str(preset_dir("hardware") / "fp16.yaml"))
    assert ok.returncode == 0 and "valid hardware config" in ok.stdout
    mem = run_cli("validate", str(preset_dir("memory") / "ddr4-3200.yaml"))
    assert mem.returncode == 0 and "valid memory config" in mem.stdout
    bad = tmp_path / "mem.yaml"
    data = yaml.safe_load((preset_dir("memory") / "ddr4-3200.yaml").read_text())
    data["channels"] = -2
    bad.write_text(yaml.safe_dump(data))
    result = run_cli("validate", str(bad))
    assert result.returncode == 2 and f"{bad}: channels" in result.stderr
    listing = run_cli("list", "--json")
    presets = json.loads(listing.stdout)
    assert "mixpe-w4a16" in presets["hardware"] and "llama-2-7b" in presets["models"]


@pytest.mark.skipif(shutil.which("mixpe-sim") is None, reason="console script not installed (pip install .)")
def test_installed_console_script_works_from_any_directory(tmp_path: Path) -> None:
    exe = shutil.which("mixpe-sim")
    assert exe is not None
    result = subprocess.run([exe, "gemm", "--m", "64", "--n", "256", "--k", "256", "--json"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert set(json.loads(result.stdout)) >= GEMM_KEYS


def test_results_do_not_depend_on_the_hash_seed() -> None:
    """Bit-for-bit determinism across processes: nothing may follow set or hash order."""
    outputs = []
    for seed in ("1", "2", "3"):
        result = run_cli("run", "--model", str(REPO / "tests/data/tiny-llama.json"), "--prompt", "64", "--gen", "4",
                         "--json", hash_seed=seed)
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        data.pop("wall_s")
        outputs.append(data)
    assert outputs[0] == outputs[1] == outputs[2]
