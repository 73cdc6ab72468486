"""The commands: each parses its options into a call of the Python API and prints the result."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mixpe_sim.cli_options import (
    add_hardware_options,
    add_max_work_option,
    add_quiet_option,
    emit,
    load_hw,
    non_negative_int,
    output_dir,
    positive_int,
)
from mixpe_sim.cli_serve import register_serve
from mixpe_sim.trace.chrome import TRACE_LEVELS
from mixpe_sim.workload.shapes import KV_BITS_CHOICES


def cmd_gemm(args: argparse.Namespace) -> int:
    from mixpe_sim.api import simulate_gemm
    from mixpe_sim.report.tables import render_gemm

    emit(args, simulate_gemm(load_hw(args), args.m, args.n, args.k, max_work=args.max_work).to_dict(), render_gemm)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from mixpe_sim.config.presets import PRESET_KINDS, list_presets
    from mixpe_sim.workload.models import list_models

    sections = {kind: list_presets(kind) for kind in PRESET_KINDS}
    sections["models"] = list_models()
    if args.json:
        from mixpe_sim.report.output import to_json

        sys.stdout.write(to_json(sections) + "\n")
        return 0
    for kind, names in sections.items():
        sys.stdout.write(f"{kind}: {', '.join(names)}\n")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from mixpe_sim.config.validate import validate_file

    sys.stdout.write(validate_file(Path(args.file)) + "\n")
    return 0


def register_basic(sub: Any) -> None:
    gemm = sub.add_parser("gemm", help="simulate one mpGEMM: activations [M x K] x quantized weights [K x N]")
    add_hardware_options(gemm)
    gemm.add_argument("--m", type=positive_int, required=True)
    gemm.add_argument("--n", type=positive_int, required=True)
    gemm.add_argument("--k", type=positive_int, required=True)
    gemm.add_argument("--json", action="store_true", help="print one JSON object")
    add_max_work_option(gemm)
    gemm.set_defaults(handler=cmd_gemm)

    listing = sub.add_parser("list", help="list presets: hardware, memory, energy, area, models")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_list)

    validate = sub.add_parser("validate", help="check a hardware, memory or energy YAML file")
    validate.add_argument("file")
    validate.set_defaults(handler=cmd_validate)


def _add_workload_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="llama-2-7b", metavar="NAME|FILE",
                        help="model preset or HuggingFace config.json (default: llama-2-7b)")
    parser.add_argument("--batch", type=positive_int, default=1)
    parser.add_argument("--kv-bits", type=positive_int, default=16, choices=KV_BITS_CHOICES,
                        help="KV-cache precision in bits (default 16)")
    parser.add_argument("--quantize-lm-head", action="store_true",
                        help="store the LM head at the weight precision (default: FP16, as AWQ/GPTQ do)")
    parser.add_argument("--exact", action="store_true",
                        help="simulate every block of every step (no extrapolation or interpolation)")
    add_max_work_option(parser)
    parser.add_argument("--allow-long-context", action="store_true",
                        help="simulate prompts/contexts beyond the model's max_position_embeddings")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--out", type=output_dir, metavar="DIR", help="write result.json and CSV tables to DIR")
    parser.add_argument("--trace", action="store_true",
                        help="also write DIR/trace.json (Perfetto), DIR/timeline.csv and, with the plot extra, PNGs")
    parser.add_argument("--trace-level", choices=TRACE_LEVELS, default="tile",
                        help="trace detail: ops and blocks; + tiles, stalls, DMA (default); + DRAM transactions")
    parser.add_argument("--no-plots", action="store_true",
                        help="with --trace: no PNGs even with the plot extra (`mixpe-sim plot DIR` draws them later)")
    add_quiet_option(parser)


def _workload(args: argparse.Namespace, prompt: int, gen: int) -> Any:
    from mixpe_sim.runs.llm import Workload

    return Workload(model=args.model, batch=args.batch, prompt=prompt, gen=gen, kv_bits=args.kv_bits,
                    quantize_lm_head=args.quantize_lm_head)


def _finish(args: argparse.Namespace, result: dict[str, Any], render: Callable[[dict[str, Any]], str]) -> int:
    from mixpe_sim.report.files import finish_output_dir, write_run_outputs

    _warn_wasted_memory(result)
    if args.out is not None:
        write_run_outputs(args.out, result)
        if getattr(args, "trace", False) and not args.no_plots:
            _plot_if_available(args.out)
        finish_output_dir(args.out, result)
    emit(args, result, render)
    return 0


def _claim(args: argparse.Namespace, command: str) -> None:
    from mixpe_sim.report.files import claim_output_dir

    if args.out is not None:
        claim_output_dir(args.out, command)


def _warn_wasted_memory(result: dict[str, Any]) -> None:
    """One stderr line per phase in which an on-chip path holds the memory below half its peak."""
    for phase, bound in result.get("bottleneck", {}).items():
        if isinstance(bound, dict) and bound.get("warning"):
            sys.stderr.write(f"mixpe-sim: warning: {phase}: {bound['warning']}\n")


def _traced(args: argparse.Namespace, hw: Any, simulate: Callable[[Any], Any]) -> Any:
    """Run `simulate(trace_sink)`; with --trace the trace and timeline land in --out, or nothing does."""
    from mixpe_sim.errors import ConfigError
    from mixpe_sim.report.files import config_sha256
    from mixpe_sim.trace.recording import TraceRecording

    if not args.trace:
        return simulate(None)
    if args.out is None:
        raise ConfigError("--trace", "", "needs --out DIR to write trace.json and timeline.csv into")
    recording = TraceRecording(args.out, args.trace_level, hw.array.rows * hw.array.cols, config_sha256(hw))
    try:
        result = simulate(recording)
    except BaseException:
        recording.abort()
        raise
    recording.close()
    return result


def _plot_if_available(out_dir: Path) -> None:
    from mixpe_sim.report.plots import MissingPlotExtra, plot_dir

    try:
        plot_dir(out_dir)
    except MissingPlotExtra as exc:
        sys.stderr.write(f"mixpe-sim: note: {exc}; trace.json and timeline.csv were written\n")


def cmd_run(args: argparse.Namespace) -> int:
    from mixpe_sim.api import load_model, simulate_request
    from mixpe_sim.report.progress import progress_bar
    from mixpe_sim.report.tables import render_run

    hw, model = load_hw(args), load_model(args.model)
    _check_request(args, hw, model, args.prompt, args.gen)
    _claim(args, "run")
    with progress_bar(not (args.json or args.quiet), "request") as progress:
        result = _traced(args, hw, lambda sink: simulate_request(
            hw, model, args.prompt, args.gen, args.batch, exact=args.exact, kv_bits=args.kv_bits,
            quantize_lm_head=args.quantize_lm_head, decode_samples=args.decode_samples,
            allow_long_context=args.allow_long_context, max_work=args.max_work, progress=progress, sink=sink,
            workers=args.workers))
    return _finish(args, result.to_dict(), render_run)


def _check_request(args: argparse.Namespace, hw: Any, model: Any, prompt: int, gen: int) -> None:
    """The checks the API makes, made before --out is claimed (so a refused run writes nothing)."""
    from mixpe_sim.workload.limits import check_work, request_work
    from mixpe_sim.workload.models import check_context

    check_context(model, prompt + gen - 1, "--prompt + --gen - 1", args.allow_long_context)
    check_work(hw, request_work(hw, model, args.batch, prompt, gen, args.exact), args.max_work, "--max-work")


def cmd_step(args: argparse.Namespace) -> int:
    from mixpe_sim.api import load_model, simulate_step
    from mixpe_sim.report.tables import render_step
    from mixpe_sim.workload.limits import check_work, step_work
    from mixpe_sim.workload.models import check_context

    hw, model = load_hw(args), load_model(args.model)
    check_context(model, args.context, "--context", args.allow_long_context)
    tokens = args.context if args.phase == "prefill" else 1
    check_work(hw, step_work(hw, model, args.batch, tokens, args.context, args.exact), args.max_work, "--max-work")
    _claim(args, "step")
    result = _traced(args, hw, lambda sink: simulate_step(
        hw, model, args.phase, args.context, args.batch, kv_bits=args.kv_bits, exact=args.exact,
        quantize_lm_head=args.quantize_lm_head, allow_long_context=True, max_work=args.max_work, sink=sink))
    return _finish(args, result.to_dict(), render_step)


def register_run(sub: Any) -> None:
    run = sub.add_parser("run", help="simulate one LLM request: prefill then decode (TTFT, TPOT, energy)")
    add_hardware_options(run)
    _add_workload_options(run)
    run.add_argument("--prompt", type=positive_int, default=512, help="prompt tokens per sequence (default 512)")
    run.add_argument("--gen", type=positive_int, default=32, help="generated tokens per sequence (default 32)")
    run.add_argument("--decode-samples", type=_at_least_two, default=6,
                     help="decode steps simulated in default mode, the rest interpolated (default 6)")
    run.add_argument("--workers", type=positive_int, default=1,
                     help="local processes for the request's steps (default 1; the result does not depend on it)")
    run.set_defaults(handler=cmd_run)

    step = sub.add_parser("step", help="simulate one forward step (all layers)")
    add_hardware_options(step)
    _add_workload_options(step)
    step.add_argument("--phase", choices=["prefill", "decode"], required=True)
    step.add_argument("--context", type=positive_int, default=2048,
                      help="prefill: prompt length; decode: KV length attended to (default 2048)")
    step.set_defaults(handler=cmd_step)


def _at_least_two(text: str) -> int:
    value = non_negative_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError("needs at least 2 (the first and the last decode step)")
    return value


def cmd_compare(args: argparse.Namespace) -> int:
    from mixpe_sim.config import parse_overrides
    from mixpe_sim.report.progress import progress_bar
    from mixpe_sim.report.tables import render_compare
    from mixpe_sim.runs.compare import ISO_AREA_HARDWARE, PAPER_HARDWARE, PAPER_MODELS, run_compare

    hardware = list(args.hw or [])
    models = list(args.model or [])
    if args.iso_area:
        return _iso_area(args, hardware or list(ISO_AREA_HARDWARE), models)
    if args.paper:
        hardware = hardware or list(PAPER_HARDWARE)
        models = models or list(PAPER_MODELS)
    if not hardware:
        raise_usage("compare needs --hw (at least one, besides the reference) or --paper")
    models = models or ["llama-2-7b"]
    wl = _workload(args, args.prompt, args.gen)
    _claim(args, "compare")
    with progress_bar(not (args.json or args.quiet), "compare") as progress:
        result = run_compare(hardware, models, wl, reference=args.reference or "fp16", memory=args.memory,
                             overrides=parse_overrides(args.overrides), exact=args.exact, progress=progress)
    return _finish(args, result, render_compare)


def _iso_area(args: argparse.Namespace, hardware: list[str], models: list[str]) -> int:
    from mixpe_sim.config import parse_overrides
    from mixpe_sim.report.progress import progress_bar
    from mixpe_sim.report.tables import render_iso_area
    from mixpe_sim.runs.compare import run_iso_area

    if args.paper or len(models) > 1:
        raise_usage("--iso-area takes one LLM --model and no --paper")
    with progress_bar(not (args.json or args.quiet), "compare --iso-area") as progress:
        result = run_iso_area(hardware, models[0] if models else "llama-2-7b", _workload(args, args.prompt, args.gen),
                              reference=args.reference, memory=args.memory,
                              overrides=parse_overrides(args.overrides), exact=args.exact, progress=progress)
    return _finish(args, result, render_iso_area)


def raise_usage(message: str) -> None:
    from mixpe_sim.errors import MixpeError

    raise MixpeError(message)


def register_compare(sub: Any) -> None:
    compare = sub.add_parser("compare", help="several accelerators on the same workloads, normalized")
    compare.add_argument("--hw", action="append", metavar="PRESET|FILE", help="hardware to compare (repeatable)")
    compare.add_argument("--memory", metavar="PRESET|FILE", help="memory used by every hardware config")
    compare.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                         help="override applied to every hardware config (repeatable)")
    compare.add_argument("--model", action="append", metavar="NAME|FILE", help="workload (repeatable)")
    compare.add_argument("--reference", metavar="PRESET|FILE",
                         help="normalize to (default fp16; with --iso-area the first --hw)")
    compare.add_argument("--iso-area", action="store_true",
                         help="re-size every --hw after the first to the first one's area, then compare one LLM "
                              "request per phase (default: mixpe-w4a16 against the paper's baselines)")
    compare.add_argument("--paper", action="store_true",
                         help="the paper's seven accelerators on its four linear-only workloads")
    compare.add_argument("--batch", type=positive_int, default=1)
    compare.add_argument("--prompt", type=positive_int, default=512)
    compare.add_argument("--gen", type=positive_int, default=32)
    compare.add_argument("--kv-bits", type=positive_int, default=16, choices=KV_BITS_CHOICES)
    compare.add_argument("--quantize-lm-head", action="store_true")
    compare.add_argument("--exact", action="store_true")
    compare.add_argument("--json", action="store_true", help="print one JSON object")
    add_quiet_option(compare)
    compare.add_argument("--out", type=output_dir, metavar="DIR", help="write result.json to DIR")
    compare.set_defaults(handler=cmd_compare)


def cmd_plot(args: argparse.Namespace) -> int:
    from mixpe_sim.report.files import check_plot_inputs
    from mixpe_sim.report.plots import plot_dir

    check_plot_inputs(args.dir)
    for path in plot_dir(args.dir):
        sys.stdout.write(f"{path}\n")
    return 0


def register_plot(sub: Any) -> None:
    plot = sub.add_parser("plot", help="PNGs from a run/step --trace --out DIR, a compare --out DIR or a sweep DIR")
    plot.add_argument("dir", type=Path, metavar="DIR")
    plot.set_defaults(handler=cmd_plot)


def cmd_sweep(args: argparse.Namespace) -> int:
    from mixpe_sim.report.progress import sweep_progress
    from mixpe_sim.report.tables import render_sweep
    from mixpe_sim.sweeps.driver import run_sweep

    out_dir = args.out or Path("sweep-" + args.file.stem)
    with sweep_progress(not args.quiet) as progress:
        outcome = run_sweep(args.file, out_dir, args.workers, args.scheduler, progress)
    sys.stdout.write(render_sweep(outcome, out_dir) + "\n")
    return 1 if any(row["status"] != "ok" for row in outcome.rows) else 0


def register_sweep(sub: Any) -> None:
    sweep = sub.add_parser("sweep", help="run a grid of design points (resumable; local pool or Dask)")
    sweep.add_argument("file", type=Path, metavar="FILE", help="sweep YAML (docs/sweeps.md)")
    sweep.add_argument("--workers", type=positive_int, default=1, help="local worker processes (default 1)")
    sweep.add_argument("--scheduler", metavar="ADDRESS",
                       help="Dask scheduler, e.g. tcp://host:8786 (needs the dask extra); overrides --workers")
    sweep.add_argument("--out", type=output_dir, metavar="DIR",
                       help="results directory (default: sweep-<file name>); rerunning skips finished points")
    add_quiet_option(sweep)
    sweep.set_defaults(handler=cmd_sweep)


COMMANDS: list[Callable[[Any], None]] = [register_basic, register_run, register_serve, register_compare,
                                         register_plot, register_sweep]

