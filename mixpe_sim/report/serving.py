"""What `serve` shows and writes: the summary table, the latency-vs-load table, the figures (latency vs
load, and batch / KV occupancy / queue over time) and the --out files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mixpe_sim.report.files import csv_text, ensure_finite
from mixpe_sim.report.output import to_json, write_atomic
from mixpe_sim.report.plots import _figure, _read_csv, save_png
from mixpe_sim.report.tables import energy_lines, fmt_time, table
from mixpe_sim.units import PS_PER_S


def _percentiles(label: str, p: dict[str, float | None]) -> list[str]:
    return [label, *(fmt_time(p[k]) if p[k] is not None else "-" for k in ("mean", "p50", "p90", "p99"))]


def render_serve(r: dict[str, Any]) -> str:
    cfg, wl = r["config"], r["config"]["workload"]
    source = f"trace {wl['trace']}" if wl.get("trace") else f"prompt {wl['prompt']}, {wl['gen']} output tokens"
    head = (f"{cfg['model']['name']} on {cfg['hardware']['name']} (memory {cfg['hardware']['memory']['name']}): "
            f"{r['requests']} requests, {source}, {r['qps'] if r['qps'] is not None else 'trace'} req/s, "
            f"policy {wl['policy']}, max batch {wl['max_batch']}")
    latency = [_percentiles(name, r[key]) for name, key in
               (("time to first token", "ttft_s"), ("time per output token", "tpot_s"),
                ("end to end", "e2e_s"), ("queueing", "queue_s"))]
    mem = r["memory"]
    kv = (f"{mem['kv_blocks']} blocks of {mem['kv_block_tokens']} tokens, peak {mem['kv_peak_occupancy']:.0%}"
          if mem["kv_blocks"] is not None else "unbounded (the memory states no capacity)")
    slo = r["slo"]
    figures = [
        ["completed", f"{r['completed']} of {r['requests']} in {fmt_time(r['duration_s'])}"],
        ["output tokens/s", f"{r['throughput_tokens_per_s']:.1f}"],
        ["requests/s", f"{r['throughput_requests_per_s']:.3f}"],
        ["goodput (req/s within SLO)", f"{r['goodput_requests_per_s']:.3f}" + _slo_text(slo)],
        ["energy per output token", f"{r['energy_j_per_token'] * 1e3:.2f} mJ"],
        ["batch (mean per iteration / max)", f"{r['batch']['mean']:.1f} / {r['batch']['max']}"],
        ["KV cache", kv],
        ["preemptions (recompute)", str(r["preemptions"])],
        ["iterations", str(r["iterations"])],
    ]
    sm = r["step_model"]
    error = r["step_model_error"]
    checked = (f"largest error {error:.2%} over {len(sm['checks'])} iterations simulated exactly"
               if error is not None else "not checked (--check-samples 0)")
    return "\n".join([
        head,
        f"serve {r['bottleneck']['serve']['summary']}" if r.get("bottleneck") else "",
        table(latency, ["latency", "mean", "p50", "p90", "p99"]),
        table(figures),
        "\nenergy",
        table(energy_lines(r["energy_breakdown_j"], r["energy_j"])),
        f"\nstep latencies: {sm['simulated_steps']} steps simulated ({sm['simulation_wall_s']:.1f} s), "
        f"the rest reused; {checked}; wall {r['wall_s']:.1f} s",
    ])


def _slo_text(slo: dict[str, Any]) -> str:
    parts = [f"TTFT <= {fmt_time(slo['ttft_s'])}" if slo["ttft_s"] is not None else "",
             f"TPOT <= {fmt_time(slo['tpot_s'])}" if slo["tpot_s"] is not None else ""]
    text = ", ".join(p for p in parts if p)
    return f" ({text})" if text else " (no SLO given: every request counts)"


def render_serve_load(data: dict[str, Any]) -> str:
    from mixpe_sim.results import load_row

    rows = []
    for r in data["loads"]:
        row = load_row(r)
        rows.append([f"{row['qps']:g}", fmt_time(row["ttft_p50_s"]), fmt_time(row["ttft_p99_s"]),
                     fmt_time(row["tpot_p50_s"] or 0), fmt_time(row["tpot_p99_s"] or 0),
                     f"{row['throughput_tokens_per_s']:.1f}", f"{row['goodput_requests_per_s']:.3f}",
                     f"{row['energy_j_per_token'] * 1e3:.2f}", str(row["preemptions"]),
                     f"{row['step_model_error']:.2%}" if row["step_model_error"] is not None else "-"])
    first = data["loads"][0]
    cfg = first["config"]
    head = (f"latency vs load: {cfg['model']['name']} on {cfg['hardware']['name']} "
            f"(memory {cfg['hardware']['memory']['name']}), policy {cfg['workload']['policy']}")
    return "\n".join([head, table(rows, ["req/s", "TTFT p50", "TTFT p99", "TPOT p50", "TPOT p99", "tok/s",
                                         "goodput", "mJ/token", "preempt", "step err"]),
                      f"wall {data['wall_s']:.1f} s"])


# ---------------------------------------------------------------- figures


def plot_latency_vs_load(loads: list[dict[str, Any]]) -> Any:
    """p50/p99 TTFT and TPOT and output throughput against the offered load (one point per load)."""
    from mixpe_sim.results import load_row

    rows = [load_row(r) for r in loads]
    qps = [r["qps"] for r in rows]
    fig, (ttft, tpot, tput) = _figure(7, 8, rows=3, sharex=True)
    for ax, key, label in ((ttft, "ttft", "time to first token (s)"), (tpot, "tpot", "time per output token (s)")):
        ax.plot(qps, [r[f"{key}_p50_s"] for r in rows], "o-", label="p50")
        ax.plot(qps, [r[f"{key}_p99_s"] for r in rows], "s--", label="p99")
        ax.set_yscale("log")
        ax.set_ylabel(label)
        ax.legend()
        ax.grid(alpha=0.3)
    tput.plot(qps, [r["throughput_tokens_per_s"] for r in rows], "o-", color="tab:green")
    tput.set_ylabel("output tokens/s")
    tput.set_xlabel("offered load (requests/s)")
    tput.grid(alpha=0.3)
    cfg = loads[0]["config"]
    ttft.set_title(f"{cfg['model']['name']} on {cfg['hardware']['name']} ({cfg['workload']['policy']})")
    fig.tight_layout()
    return fig


def plot_serving_timeline(timeline: list[dict[str, Any]]) -> Any:
    """Batch size, KV-cache occupancy and queue length per iteration over the run."""
    fig, (batch, kv, queue) = _figure(10, 7, rows=3, sharex=True)
    t = [row["start_s"] for row in timeline]
    batch.step(t, [row["batch"] for row in timeline], where="post", label="sequences in the iteration")
    batch.step(t, [row["decodes"] for row in timeline], where="post", label="of which decodes", alpha=0.7)
    batch.set_ylabel("batch")
    batch.legend()
    kv.step(t, [100 * (row["kv_occupancy"] or 0.0) for row in timeline], where="post", color="tab:purple")
    kv.set_ylabel("KV cache used (%)")
    queue.step(t, [row["waiting"] for row in timeline], where="post", color="tab:red")
    queue.set_ylabel("requests waiting")
    queue.set_xlabel("time (s)")
    for ax in (batch, kv, queue):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- --out


def write_serve_outputs(out_dir: Path, result: dict[str, Any], loads: list[Any]) -> list[Path]:
    """result.json; requests.csv and timeline.csv (one row per request / iteration, with its load);
    trace.json (iterations as spans, batch / KV / queue as counters); load.csv with several loads."""
    from mixpe_sim.trace.chrome import ChromeTraceWriter
    from mixpe_sim.trace.recording import TIMELINE_FILE, TRACE_FILE

    ensure_finite(result)
    files = {"result.json": to_json(result) + "\n",
             "requests.csv": csv_text([{"qps": r.qps, **row} for r in loads for row in r.per_request]),
             TIMELINE_FILE: csv_text([{"qps": r.qps, **row} for r in loads for row in r.timeline])}
    if len(loads) > 1:
        from mixpe_sim.results import load_row

        files["load.csv"] = csv_text([load_row(r.to_dict()) for r in loads])
    written = []
    for name, text in files.items():
        write_atomic(out_dir / name, text)
        written.append(out_dir / name)
    writer = ChromeTraceWriter(out_dir / TRACE_FILE, "tile")
    try:
        for r in loads:
            _trace_load(writer, r)
    except BaseException:
        writer.abort()
        raise
    writer.close()
    return [*written, out_dir / TRACE_FILE]


def _trace_load(writer: Any, r: Any) -> None:
    process = f"serving at {r.qps:g} req/s" if r.qps is not None else "serving (trace arrivals)"
    for row in r.timeline:
        start, end = round(row["start_s"] * PS_PER_S), round(row["end_s"] * PS_PER_S)
        writer.span(process, "iterations", f"{row['prefill_tokens']} prefill tokens + {row['decodes']} decodes",
                    start, end, {"batch": row["batch"], "energy_j": row["energy_j"]})
        writer.write_counter(process, "batch", start, {"sequences": row["batch"], "decodes": row["decodes"]})
        writer.write_counter(process, "KV cache used", start, {"fraction": row["kv_occupancy"] or 0.0})
        writer.write_counter(process, "queue", start, {"waiting": row["waiting"], "running": row["running"]})


def plot_serve_dir(out_dir: Path, result: dict[str, Any]) -> list[Path]:
    """The serving figures for a `serve --out` directory."""
    loads = result["loads"] if result["kind"] == "serve_load" else [result]
    written = []
    if len(loads) > 1:
        written.append(save_png(plot_latency_vs_load(loads), out_dir / "latency_vs_load.png"))
    qps = loads[-1]["qps"]  # None: a trace's own arrivals
    timeline = [row for row in _read_csv(out_dir / "timeline.csv") if row["qps"] == qps]
    if timeline:
        written.append(save_png(plot_serving_timeline(timeline), out_dir / "serve_timeline.png"))
    return written
