"""Issue 17: valid edge inputs run on every output path; bad inputs end in one line and exit 2."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from mixpe_sim.cli import main
from mixpe_sim.config import load_hardware
from mixpe_sim.config.presets import preset_dir
from mixpe_sim.errors import ConfigError, MixpeError
from mixpe_sim.report.files import NonFiniteResult, ensure_finite

REPO = Path(__file__).resolve().parents[1]
TINY = str(REPO / "tests/data/tiny-llama.json")


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run the CLI in-process; assert exit 2 and exactly one stderr line, return it."""
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse errors
        status = exc.code
    err = capsys.readouterr().err
    assert status == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


# ---------------------------------------------------------------- gen 1 and 2 on every output path


@pytest.mark.parametrize("gen", [1, 2])
def test_short_generations_work_on_text_json_and_out(gen: int, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    base = ["run", "--model", TINY, "--prompt", "16", "--gen", str(gen)]
    assert main(base) == 0
    text = capsys.readouterr().out
    assert main([*base, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    out = tmp_path / "out"
    assert main([*base, "--out", str(out), "--json"]) == 0
    capsys.readouterr()
    stored = json.loads((out / "result.json").read_text())
    if gen == 1:  # no decode step: no time per output token, and the outputs say why
        assert data["tpot_s"] is None and "no decode step" in data["tpot_note"]
        assert "no decode step" in text and data["decode_steps"] == []
        assert data["e2e_s"] == data["ttft_s"]
    else:  # one decode step: TPOT is that step's time, e2e = TTFT + TPOT
        assert data["tpot_s"] == data["decode_steps"][0]["step_s"] > 0
        assert data["e2e_s"] == pytest.approx(data["ttft_s"] + data["tpot_s"])
    stored.pop("wall_s"), data.pop("wall_s")
    assert stored == data


# ---------------------------------------------------------------- files that are not valid text


def _hw_text() -> str:
    return (preset_dir("hardware") / "mixpe-w4a16.yaml").read_text()


BAD_FILES: dict[str, tuple[bytes, str]] = {
    "non_utf8": (b"name: \xff\xfe\n", "not UTF-8 text"),
    "deep": (b"[" * 3_000_000, "nested more than"),  # PyYAML alone is quadratic here: hours
    "duplicate": (b"name: a\nname: b\n", "duplicate key 'name'"),
    "bomb": (("a: &a [" + ",".join(["x"] * 10) + "]\n" + "".join(
        f"{c}: &{c} [" + ",".join([f"*{p}"] * 10) + "]\n" for p, c in zip("abcdef", "bcdefg", strict=True)
    )).encode(), "aliases are expanded"),
    "not_mapping": (b"- 1\n- 2\n", "expected a mapping"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_yaml_files_are_one_line(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    content, expected = BAD_FILES[name]
    path = tmp_path / f"{name}.yaml"
    path.write_bytes(content)
    for argv in (["validate", str(path)], ["gemm", "--hw", str(path), "--m", "1", "--n", "128", "--k", "128"]):
        line = one_line_error(capsys, argv)
        assert str(path) in line and expected in line


def test_fifo_and_device_are_refused_without_opening(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)  # opening it would block forever: the check must come first
    assert "not a regular file" in one_line_error(capsys, ["validate", str(fifo)])
    assert "not a regular file" in one_line_error(capsys, ["validate", "/dev/zero"])
    assert "not a regular file" in one_line_error(capsys, ["run", "--model", "/dev/zero"])


def test_oversized_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mixpe_sim.config.textfile import MAX_FILE_BYTES

    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    assert "larger than" in one_line_error(capsys, ["validate", str(path)])


@pytest.mark.parametrize("kind", ["hardware", "memory", "energy", "area"])
def test_strict_yaml_reads_every_preset_as_pyyaml_pure_safe_loader_does(kind: str) -> None:
    """Presets are parsed by libyaml when PyYAML has it: the documents must be the pure parser's."""
    from mixpe_sim.config.textfile import parse_yaml

    for path in sorted(preset_dir(kind).glob("*.yaml")):
        text = path.read_text()
        assert parse_yaml(text, str(path)) == yaml.load(text, Loader=yaml.SafeLoader), path


@pytest.mark.parametrize("content, expected", [
    (b'{"model_type": "llama", "hidden_size": 8, "hidden_size": 16}', "duplicate key 'hidden_size'"),
    (b'{"model_type": "llama", "hidden_size": NaN}', "NaN"),
    (b"\xff", "not UTF-8"),
    (b"[" * 3000, "nested more than"),
])
def test_bad_model_json_is_one_line(content: bytes, expected: str, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(content)
    assert expected in one_line_error(capsys, ["run", "--model", str(path)])


def test_model_directory_is_named_as_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "adir.json"
    folder.mkdir()
    assert "is a directory" in one_line_error(capsys, ["run", "--model", str(folder)])


# ---------------------------------------------------------------- model consistency


def _tiny(**changes: Any) -> dict[str, Any]:
    data = json.loads(Path(TINY).read_text())
    data.update(changes)
    return data


@pytest.mark.parametrize("changes, key, expected", [
    ({"tie_word_embeddings": "no"}, "tie_word_embeddings", "true or false"),
    ({"head_dim": 32}, "head_dim", "must equal hidden_size"),
    ({"num_key_value_heads": 3}, "num_key_value_heads", "must divide"),
    ({"num_key_value_heads": 16}, "num_key_value_heads", "must divide"),
    ({"hidden_size": 10**30}, "hidden_size", "whole number in 1.."),
    ({"num_hidden_layers": True}, "num_hidden_layers", "whole number"),
])
def test_inconsistent_models_are_refused(changes: dict[str, Any], key: str, expected: str) -> None:
    from mixpe_sim.workload.models import parse_model

    with pytest.raises(ConfigError) as info:
        parse_model(_tiny(**changes), "tiny", "tiny.json")
    assert info.value.key_path == key and expected in info.value.message


def test_context_beyond_max_positions_needs_a_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "short.json"
    path.write_text(json.dumps(_tiny(max_position_embeddings=32)))
    line = one_line_error(capsys, ["run", "--model", str(path), "--prompt", "30", "--gen", "4"])
    assert "33 tokens exceed" in line and "--allow-long-context" in line
    assert "--context" in one_line_error(capsys, ["step", "--phase", "decode", "--model", str(path),
                                                  "--context", "33"])
    assert main(["run", "--model", str(path), "--prompt", "30", "--gen", "3", "--json"]) == 0  # 32: fits
    assert main(["run", "--model", str(path), "--prompt", "30", "--gen", "4", "--json",
                 "--allow-long-context"]) == 0
    capsys.readouterr()


# ---------------------------------------------------------------- generic value rules


@pytest.mark.parametrize("key, value, expected", [
    ("array.rows", True, "whole number, not true/false"),
    ("array.rows", "5e8x", "valid integer"),
    ("array.k_split_small_m", "no", "valid boolean"),
    ("buffers.weight.double_buffered", 1, "valid boolean"),
    ("memory.latency_ns", float("inf"), "finite number (not .inf"),
    ("memory.latency_ns", float("nan"), "finite number (not .inf"),
    ("memory.latency_ns", 1e300, "less than or equal to"),
    ("energy.vector_pj_per_element", float("inf"), "finite number (not .inf"),
    ("memory.channels", 2**63, "less than or equal to"),
    ("quant.low_precision", {"weight_bits": 4, "activation_bits": 4, "block_fraction": 0.5, "ops": ["qkv"]},
     "qkv_proj"),
])
def test_generic_value_rules(key: str, value: Any, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        memory = {"memory.latency_ns": "flat", "memory.channels": "ddr4-3200"}.get(key)
        load_hardware("mixpe-w4a16", memory, [(key, value)])
    assert expected in info.value.message, info.value.message


def test_integral_scientific_notation_is_accepted_for_integers() -> None:
    # YAML 1.1 reads 5e8 as text; it is a whole number, so integer keys take it
    hw = load_hardware("mixpe-w4a16", None, [("core_freq_hz", "5e8")])
    assert hw.core_freq_hz == 500_000_000
    with pytest.raises(ConfigError, match="whole number"):
        load_hardware("mixpe-w4a16", None, [("core_freq_hz", "5.5e0")])


@pytest.mark.parametrize("key, value, expected", [
    ("memory.timing.tcl_ns", 0.0001, "greater than or equal to 0.001"),  # rounds to 0 ps
    ("memory.timing.trefi_ns", 100.0, "must exceed trfc_ns"),
    ("memory.data_rate_mtps", 1e-300, "greater than or equal to 0.000000001"),  # 8e305 ps per burst
])
def test_dram_timings_must_be_representable(key: str, value: float, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_hardware("mixpe-w4a16", "ddr4-3200", [(key, value)])
    assert expected in info.value.message


def test_shipped_energy_table_validates(capsys: pytest.CaptureFixture[str]) -> None:
    for path in sorted(preset_dir("energy").glob("*.yaml")):
        assert main(["validate", str(path)]) == 0
        assert "valid energy table" in capsys.readouterr().out


# ---------------------------------------------------------------- no NaN or infinity in a result


def test_non_finite_results_are_refused_by_the_last_guard() -> None:
    ensure_finite({"a": [1.0, {"b": 2}], "c": None})
    with pytest.raises(NonFiniteResult, match=r"energy_breakdown_j\.core is nan"):
        ensure_finite({"energy_breakdown_j": {"dram": 1.0, "core": float("nan")}})
    with pytest.raises(NonFiniteResult, match=r"steps\[1\] is inf"):
        ensure_finite({"steps": [0.0, float("inf")]})
    assert issubclass(NonFiniteResult, MixpeError)


# ---------------------------------------------------------------- buffer too small


@pytest.mark.parametrize("capacity", [1, 7, 2047])
def test_too_small_buffer_names_the_true_minimum(capacity: int, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["gemm", "--m", "64", "--n", "512", "--k", "512"]
    line = one_line_error(capsys, [*argv, "--set", f"buffers.weight.capacity_bytes={capacity}"])
    minimum = int(line.rsplit(">= ", 1)[1].rstrip(")"))
    assert main([*argv, "--set", f"buffers.weight.capacity_bytes={minimum}", "--json"]) == 0
    capsys.readouterr()
    one_line_error(capsys, [*argv, "--set", f"buffers.weight.capacity_bytes={minimum - 1}"])


# ---------------------------------------------------------------- --out checked before simulating


@pytest.mark.parametrize("out, expected", [
    ("/proc/mixpe-x", "cannot create or write into"),
    ("x" * 300, "File name too long"),
])
def test_unusable_out_is_one_line_before_simulating(out: str, expected: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert expected in one_line_error(capsys, ["run", "--model", TINY, "--out", out])


def test_validate_reports_yaml_overrides_as_set(tmp_path: Path) -> None:
    data = yaml.safe_load(_hw_text())
    data["array"]["rows"] = True
    path = tmp_path / "hw.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        load_hardware(str(path))
    assert info.value.source == str(path) and info.value.key_path == "array.rows"


# ---------------------------------------------------------------- size ceiling


@pytest.mark.parametrize("argv, expected", [
    (["run", "--prompt", "10000000", "--allow-long-context"], "over the limit of"),
    (["run", "--batch", "1000000"], "over the limit of"),
    (["step", "--phase", "prefill", "--context", "10000000", "--allow-long-context"], "over the limit of"),
    (["gemm", "--m", "1000000000", "--n", "4096", "--k", "4096"], "over the limit of"),
    (["gemm", "--m", "1", "--n", "128", "--k", "128", "--memory", "ddr4-3200", "--set",
      "memory.banks_per_group=2147483648"], "allows at most"),
    (["run", "--model", TINY, "--prompt", "16", "--gen", "2", "--max-work", "10"], "pass --max-work N"),
])
def test_work_beyond_the_ceiling_is_refused_before_simulating(argv: list[str], expected: str,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    line = one_line_error(capsys, argv)
    assert expected in line


def test_work_estimate_tracks_the_simulation() -> None:
    """The estimate is a closed form, not a simulation; it must scale like the simulated event count."""
    from mixpe_sim.runs.gemm import run_gemm
    from mixpe_sim.workload.limits import gemm_work

    hw = load_hardware("mixpe-w4a16")
    small, large = (512, 1024, 1024), (2048, 1024, 1024)
    ratio_estimate = gemm_work(hw, *large).units / gemm_work(hw, *small).units
    ratio_events = run_gemm(hw, *large)["events"] / run_gemm(hw, *small)["events"]
    assert ratio_estimate == pytest.approx(ratio_events, rel=0.5)


def test_max_work_raises_the_ceiling(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["gemm", "--m", "64", "--n", "512", "--k", "512", "--json"]
    one_line_error(capsys, [*argv, "--max-work", "1"])
    assert main([*argv, "--max-work", "1000000"]) == 0
    capsys.readouterr()


# ---------------------------------------------------------------- one command per --out directory


def test_out_directory_has_a_manifest_and_never_mixes_commands(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    run = ["run", "--model", TINY, "--prompt", "16", "--gen", "2", "--out", str(out), "--json"]
    assert main(run) == 0
    # as if an earlier `run --trace` had written a trace here, and a SIGKILLed one had left a temp file
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**manifest, "files": [*manifest["files"], "trace.json"]}))
    (out / "trace.json").write_text("{}")
    os.utime(out / "trace.json", ns=(manifest["started_ns"] - 1, manifest["started_ns"] - 1))
    (out / ".trace.json.x1y2.tmp").write_text("{")
    assert main(run) == 0  # the same command without --trace: its own trace is now stale
    capsys.readouterr()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["command"] == "run" and manifest["state"] == "complete"
    assert sorted(manifest["files"]) == sorted(p.name for p in out.iterdir() if p.name != "manifest.json")
    assert not (out / "trace.json").exists() and not (out / ".trace.json.x1y2.tmp").exists()
    line = one_line_error(capsys, ["step", "--model", TINY, "--phase", "decode", "--context", "16",
                                   "--out", str(out)])
    assert "holds the outputs of `run`" in line


def test_overrides_are_blamed_for_what_they_broke() -> None:
    with pytest.raises(ConfigError) as info:
        load_hardware("mixpe-w4a16", None, [("nosuch.key", 1)])
    assert info.value.source == "--set nosuch.key=1"
    with pytest.raises(ConfigError) as info:
        load_hardware("mixpe-w4a16", "ddr4-3200", [("memory.kind", "ideal")])
    assert "--set memory.kind=ideal" in info.value.source


def test_compare_reference_is_named_as_reference(capsys: pytest.CaptureFixture[str]) -> None:
    assert one_line_error(capsys, ["compare", "--hw", "int8", "--reference", "nope"]).startswith(
        "mixpe-sim: error: --reference: unknown hardware preset 'nope'")


def test_plot_refuses_mixed_or_unfinished_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["run", "--model", TINY, "--prompt", "16", "--gen", "2", "--out", str(out), "--json"]) == 0
    capsys.readouterr()
    (out / "timeline.csv").write_text("start_s,end_s\n0,1\n")  # not written by this run
    assert "refusing to plot mixed outputs" in one_line_error(capsys, ["plot", str(out)])
    (out / "timeline.csv").unlink()
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**manifest, "state": "running"}))
    assert "has not finished" in one_line_error(capsys, ["plot", str(out)])
