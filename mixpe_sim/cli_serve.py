"""`mixpe-sim serve`: request arrivals, continuous batching and latency vs load (docs/serving.md)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mixpe_sim.cli_options import (
    add_hardware_options,
    add_quiet_option,
    emit,
    load_hw,
    non_negative_int,
    output_dir,
    positive_int,
)
from mixpe_sim.workload.shapes import KV_BITS_CHOICES


def _positive_number(text: str, what: str, example: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what} ({example}), got '{text}'") from None
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"must be a positive number of {what}, got '{text}'")
    return value


def qps_list(text: str) -> list[float]:
    """`8` or `1,2,4,8`: requests per second, each a positive number."""
    return [_positive_number(part, "requests per second", "a number or a list like 1,2,4")
            for part in text.split(",")]


def milliseconds(text: str) -> float:
    return _positive_number(text, "milliseconds", "a number")


def cmd_serve(args: argparse.Namespace) -> int:
    from mixpe_sim.api import _serve, load_model
    from mixpe_sim.report.files import claim_output_dir, finish_output_dir
    from mixpe_sim.report.progress import progress_bar
    from mixpe_sim.report.serving import render_serve, render_serve_load, write_serve_outputs
    from mixpe_sim.results import ServingLoadResult

    hw, model = load_hw(args), load_model(args.model)
    # without --qps: 1 req/s, or a trace's own arrival times
    loads: list[float | None] = list(args.qps) if args.qps else [None if args.trace else 1.0]
    if args.out is not None:
        claim_output_dir(args.out, "serve")
    with progress_bar(not (args.json or args.quiet), "serve") as progress:
        results = _serve(hw, model, loads, requests=args.requests,
                         prompt=args.prompt, gen=args.gen, trace_file=args.trace, seed=args.seed,
                         policy=args.policy, max_batch=args.max_batch,
                         chunk_tokens=args.chunk_tokens, max_prefill_tokens=args.max_prefill_tokens,
                         kv_block_tokens=args.kv_block_tokens, kv_bits=args.kv_bits,
                         quantize_lm_head=args.quantize_lm_head, slo_ttft_ms=args.slo_ttft_ms,
                         slo_tpot_ms=args.slo_tpot_ms, check_samples=args.check_samples, exact=args.exact,
                         allow_long_context=args.allow_long_context, progress=progress)
    data = results[0].to_dict() if len(results) == 1 else ServingLoadResult(results).to_dict()
    if args.out is not None:
        write_serve_outputs(args.out, data, results)
        _plot(args.out, data)
        finish_output_dir(args.out, data)
    emit(args, data, render_serve if len(results) == 1 else render_serve_load)
    return 0


def _plot(out_dir: Any, data: dict[str, Any]) -> None:
    from mixpe_sim.report.plots import MissingPlotExtra
    from mixpe_sim.report.serving import plot_serve_dir

    try:
        plot_serve_dir(out_dir, data)
    except MissingPlotExtra as exc:
        sys.stderr.write(f"mixpe-sim: note: {exc}; the CSV files and trace.json were written\n")


def register_serve(sub: Any) -> None:
    serve = sub.add_parser("serve", help="serve a stream of requests: continuous batching, KV cache, "
                                         "TTFT/TPOT percentiles and throughput vs load")
    add_hardware_options(serve)
    serve.add_argument("--model", default="llama-2-7b", metavar="NAME|FILE",
                       help="model preset or HuggingFace config.json (default: llama-2-7b)")
    serve.add_argument("--kv-bits", type=positive_int, default=16, choices=KV_BITS_CHOICES,
                       help="KV-cache precision in bits (default 16)")
    serve.add_argument("--quantize-lm-head", action="store_true",
                       help="store the LM head at the weight precision (default: FP16)")
    serve.add_argument("--qps", type=qps_list, metavar="RATE[,RATE...]",
                       help="Poisson arrivals, requests/s; a list (1,2,4,8) gives latency vs load "
                            "(default 1 without --trace; a trace without arrival_s needs it, one with them refuses it)")
    serve.add_argument("--requests", type=positive_int, help="requests per load (default 100; "
                                                             "with --trace: its rows)")
    serve.add_argument("--seed", type=non_negative_int, default=0, help="seed of the arrival process (default 0)")
    serve.add_argument("--prompt", type=positive_int, default=512, help="prompt tokens per request (default 512)")
    serve.add_argument("--gen", type=positive_int, default=128,
                       help="output tokens per request, the first from prefill (default 128)")
    serve.add_argument("--trace", metavar="FILE.csv|NAME",
                       help="request lengths (prompt_tokens, output_tokens; optional arrival_s) from a CSV, "
                            "or a shipped trace: sharegpt-like")
    serve.add_argument("--policy", choices=["vllm", "sarathi"], default="vllm",
                       help="vllm: prefills first (vLLM v0); sarathi: chunked prefills in a token budget")
    serve.add_argument("--max-batch", type=positive_int, default=256, help="running sequences at most (default 256)")
    serve.add_argument("--chunk-tokens", type=positive_int, default=512,
                       help="sarathi: tokens per iteration, decodes first (default 512)")
    serve.add_argument("--max-prefill-tokens", type=positive_int,
                       help="vllm: prompt tokens per prefill iteration (default max(2048, the model's context))")
    serve.add_argument("--kv-block-tokens", type=positive_int, default=16, help="paged KV block (default 16)")
    serve.add_argument("--slo-ttft-ms", type=milliseconds, metavar="MS", help="goodput: TTFT at most MS")
    serve.add_argument("--slo-tpot-ms", type=milliseconds, metavar="MS", help="goodput: TPOT at most MS")
    serve.add_argument("--check-samples", type=non_negative_int, default=8,
                       help="iterations simulated exactly to measure step_model_error (default 8; 0: none)")
    serve.add_argument("--exact", action="store_true",
                       help="simulated steps run every block (slow; default: steady-state block extrapolation)")
    serve.add_argument("--allow-long-context", action="store_true",
                       help="serve requests beyond the model's max_position_embeddings")
    serve.add_argument("--json", action="store_true", help="print one JSON object")
    serve.add_argument("--out", type=output_dir, metavar="DIR",
                       help="write result.json, requests.csv, timeline.csv, trace.json (and PNGs) to DIR")
    add_quiet_option(serve)
    serve.set_defaults(handler=cmd_serve)
