"""Human-readable summaries for the terminal."""

from __future__ import annotations

from typing import Any


def fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if abs(seconds) >= scale:
            return f"{seconds / scale:.3f} {unit}"
    return f"{seconds * 1e9:.3f} ns"


def fmt_bytes(nbytes: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.2f} {unit}"
    return f"{nbytes:.0f} B"


def table(rows: list[list[str]], header: list[str] | None = None) -> str:
    all_rows = ([header] if header else []) + rows
    widths = [max(len(row[i]) for row in all_rows) for i in range(len(all_rows[0]))]
    lines = []
    for index, row in enumerate(all_rows):
        lines.append("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in
                               enumerate(zip(row, widths, strict=True))))
        if header and index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def stall_lines(parts: dict[str, float], total_s: float) -> list[list[str]]:
    """Rows of a time breakdown (compute and stall causes) with their share of the total."""
    return [[f"  {cause}", fmt_time(value), f"{100 * value / total_s:.1f}%"]
            for cause, value in parts.items() if value > 0 and total_s > 0]


def energy_lines(breakdown: dict[str, float], total_j: float) -> list[list[str]]:
    return [[f"  {part}", f"{value * 1e3:.4f} mJ", f"{100 * value / total_j:.1f}%"]
            for part, value in breakdown.items() if total_j > 0]


def memory_lines(stats: dict[str, Any], label: str = "memory") -> list[list[str]]:
    """Achieved bandwidth, row-hit rate, channel balance and read latency of one simulated step."""
    if not stats:  # a phase that did not run (gen 1 has no decode step)
        return [[f"{label}", "not simulated (no step of this phase)", ""]]
    util = stats["channel_utilization"]
    peak = stats["peak_bw_bytes_per_s"]
    rows = [
        [f"{label} achieved BW", f"{stats['achieved_bw_bytes_per_s'] / 1e9:.2f} GB/s",
         f"of {peak / 1e9:.1f} GB/s peak" if peak is not None else "unbounded peak"],
        [f"{label} read latency", f"mean {fmt_time(stats['read_latency_mean_s'])}",
         f"p99 {fmt_time(stats['read_latency_p99_s'])}"],
    ]
    if stats["row_hit_rate"] is not None:
        rows.append([f"{label} row-hit rate", f"{100 * stats['row_hit_rate']:.1f}%", ""])
    if len(util) > 1:
        rows.append([f"{label} channel busy", f"min {100 * min(util):.1f}%", f"max {100 * max(util):.1f}%"])
    return rows


def render_gemm(r: dict[str, Any]) -> str:
    shape = r["shape"]
    t = r["tiling"]
    hardware = r["config"]["hardware"]
    head = (f"GEMM M={shape['m']} N={shape['n']} K={shape['k']} on {hardware['name']} "
            f"(memory {hardware['memory']['name']})")
    rows = [
        ["time", fmt_time(r["time_s"]), f"{r['cycles']} cycles"],
        ["compute", f"{r['compute_cycles']} cycles", f"{100 * r['pe_utilization']:.1f}% PE util"],
        ["stalls", f"{r['stall_cycles']} cycles", ""],
        *stall_lines(r["stall_breakdown_s"], r["time_s"]),
        ["MACs", f"{r['macs']:,}", ""],
        ["dequant ops", f"{r['dequant_ops']:,}", ""],
        ["DRAM read", fmt_bytes(r["dram_bytes_read"]), f"{100 * r['dram_bw_utilization']:.1f}% BW util"],
        ["DRAM written", fmt_bytes(r["dram_bytes_written"]), ""],
        *memory_lines(r["memory"], "DRAM"),
        ["energy", f"{r['energy_j'] * 1e3:.4f} mJ", ""],
        *energy_lines(r["energy_breakdown_j"], r["energy_j"]),
        ["tiling", f"{t['mt']}x{t['nt']}x{t['kt']} {t['order']}", ""],
        ["bound by", r["bottleneck"]["summary"].removeprefix("bound by "), ""],
        ["area", f"{r['area_mm2']:.2f} mm^2", f"{r['process_nm']} nm"],
        ["simulation", f"{r['events']} events", f"{r['wall_s']:.3f} s wall"],
    ]
    return head + "\n" + table(rows)


def _op_rows(per_op: list[dict[str, Any]], phase: str, total_s: float, limit: int = 10) -> list[list[str]]:
    rows = []
    for entry in [e for e in per_op if e["phase"] == phase][:limit]:
        spent = entry["busy_s"] + entry["stall_s"]
        rows.append([f"  {entry['op']}", str(entry["calls"]), fmt_time(entry["busy_s"]),
                     fmt_time(entry["stall_s"]), f"{100 * spent / total_s:.1f}%" if total_s else "-"])
    return rows


def bound_lines(r: dict[str, Any]) -> list[str]:
    """One line per phase: what binds it (and the design's area, which every comparison needs)."""
    lines = [f"{phase} {b['summary']}" for phase, b in r.get("bottleneck", {}).items()]
    if "area_mm2" in r:
        lines.append(f"area {r['area_mm2']:.2f} mm^2 at {r.get('process_nm', '?')} nm")
    return lines


def render_run(r: dict[str, Any]) -> str:
    cfg = r["config"]
    wl = cfg["workload"]
    head = (f"{wl['model']} on {cfg['hardware']['name']} (memory {cfg['hardware']['memory']['name']}), "
            f"batch {wl['batch']}, prompt {wl['prompt']}, {wl['gen']} generated tokens")
    decode_total = r["e2e_s"] - r["ttft_s"]
    summary = [
        ["time to first token", fmt_time(r["ttft_s"])],
        ["time per output token",
         fmt_time(r["tpot_s"]) if r["tpot_s"] is not None else f"none ({r.get('tpot_note', 'no decode step')})"],
        ["end to end", fmt_time(r["e2e_s"])],
        ["output tokens/s", f"{r['tokens_per_s']:.2f}"],
        ["energy", f"{r['energy_j']:.4f} J"],
        ["DRAM read / written", f"{fmt_bytes(r['dram_bytes_read'])} / {fmt_bytes(r['dram_bytes_written'])}"],
        ["DRAM BW utilisation", f"{100 * r['dram_bw_utilization']:.1f}%"],
        ["PE utilisation", f"{100 * r['pe_utilization']:.1f}%"],
    ]
    where = stall_lines(r["time_breakdown_s"], r["e2e_s"])
    energy = energy_lines(r["energy_breakdown_j"], r["energy_j"])
    header = ["op", "calls", "busy", "stalled", "share"]
    mode = r["mode"]
    how = ("exact: every block of every step simulated" if mode["exact"] else
           f"default: {'steady-state block extrapolation, ' if mode['block_extrapolation'] else ''}"
           f"{len(mode['decode_steps_simulated'])} decode steps simulated, the rest interpolated (--exact for all)")
    parts = [
        head,
        *bound_lines(r),
        table(summary),
        "\nmemory (one simulated prefill step / one decode step)",
        table(memory_lines(r["memory"]["prefill"], "prefill") + memory_lines(r["memory"]["decode"], "decode")),
        "\nwhere PE-array time went (whole request)",
        table(where),
        "\nenergy",
        table(energy),
        f"\nprefill ops ({fmt_time(r['ttft_s'])})",
        table(_op_rows(r["per_op"], "prefill", r["ttft_s"]), header),
        f"\ndecode ops (all steps, {fmt_time(decode_total)})",
        table(_op_rows(r["per_op"], "decode", decode_total), header),
        f"\nsimulation: {r['events']:,} events in {r['wall_s']:.2f} s wall; mode {how}",
    ]
    return "\n".join(parts)


def render_step(r: dict[str, Any]) -> str:
    cfg = r["config"]
    wl = cfg["workload"]
    head = (f"{wl['model']} {r['phase']} step at context {r['context']} on {cfg['hardware']['name']} "
            f"(memory {cfg['hardware']['memory']['name']}), batch {wl['batch']}")
    summary = [
        ["step time", fmt_time(r["step_s"])],
        ["tokens/s", f"{r['tokens_per_s']:.2f}"],
        ["energy", f"{r['energy_j']:.4f} J"],
        ["DRAM read / written", f"{fmt_bytes(r['dram_bytes_read'])} / {fmt_bytes(r['dram_bytes_written'])}"],
        ["DRAM BW utilisation", f"{100 * r['dram_bw_utilization']:.1f}%"],
        ["PE utilisation", f"{100 * r['pe_utilization']:.1f}%"],
    ]
    where = stall_lines(r["time_breakdown_s"], r["step_s"])
    return "\n".join([
        head, *bound_lines(r), table(summary),
        "\nmemory (blocks simulated; the BW utilisation above covers the whole step)"
        if r.get("mode", {}).get("block_extrapolation") else "\nmemory",
        table(memory_lines(r["memory"])),
        "\nwhere PE-array time went", table(where),
        "\nops", table(_op_rows(r["per_op"], r["phase"], r["step_s"]), ["op", "calls", "busy", "stalled", "share"]),
        f"\nsimulation: {r['events']:,} events in {r['wall_s']:.2f} s wall",
    ])


def render_compare(r: dict[str, Any]) -> str:
    ref = r["reference"]
    lines = [f"normalized to {ref} (time and energy; speedup = 1 / norm time)"]
    header = ["hw", "time", "energy", "norm time", "norm energy", "speedup", "energy saving"]
    for model in dict.fromkeys(row["model"] for row in r["rows"]):
        rows = [[row["hw"], fmt_time(row["time_s"]), f"{row['energy_j'] * 1e3:.2f} mJ",
                 f"{row['norm_time']:.3f}", f"{row['norm_energy']:.3f}", f"{1 / row['norm_time']:.2f}x",
                 f"{1 / row['norm_energy']:.2f}x"] for row in r["rows"] if row["model"] == model]
        lines += [f"\n{model}", table(rows, header)]
    mean_rows = [[hw, f"{m['norm_time']:.3f}", f"{m['norm_energy']:.3f}", f"{1 / m['norm_time']:.2f}x",
                  f"{1 / m['norm_energy']:.2f}x"] for hw, m in r["mean"].items()]
    lines += ["\nmean over models", table(mean_rows, ["hw", "norm time", "norm energy", "speedup", "energy saving"])]
    lines.append(f"\nsimulation: {r['events']:,} events in {r['wall_s']:.2f} s wall")
    return "\n".join(lines)


def render_iso_area(r: dict[str, Any]) -> str:
    lines = [f"every design re-sized to {r['target_area_mm2']:.2f} mm^2 (+-2.5%); normalized to {r['reference']} "
             "(per phase; speedup = 1 / norm time)"]
    header = ["hw", "area", "array", "prefill", "norm", "decode", "norm", "energy", "norm", "decode bound by"]
    body = []
    for row in r["rows"]:
        hw = r["config"]["hardware"][row["hw"]]
        body.append([row["hw"], f"{row['area_mm2']:.2f} mm2", f"{hw['array']['rows']}x{hw['array']['cols']}",
                     fmt_time(row["prefill"]["time_s"]), f"{row['prefill']['norm_time']:.2f}",
                     fmt_time(row["decode"]["time_s"]), f"{row['decode']['norm_time']:.2f}",
                     f"{row['energy_j'] * 1e3:.1f} mJ", f"{row['norm_energy']:.2f}",
                     row["bottleneck"].get("decode", "")])
    lines += [table(body, header), f"\nsimulation: {r['events']:,} events in {r['wall_s']:.2f} s wall"]
    return "\n".join(lines)


def render_sweep(outcome: Any, out_dir: Any, limit: int = 20) -> str:
    """The fastest points first, then every failure with its error."""
    rows = outcome.rows
    ok = sorted((r for r in rows if r["status"] == "ok"), key=lambda r: r["metrics"]["latency_s"])
    failed = [r for r in rows if r["status"] != "ok"]
    keys = list(dict.fromkeys(k for r in rows for k in r["values"]))
    header = ["point", *keys, "latency", "energy"]
    body = [[_point_label(r), *(str(r["values"].get(k, "")) for k in keys), fmt_time(r["metrics"]["latency_s"]),
             f"{r['metrics']['energy_j']:.4g} J"] for r in ok[:limit]]
    distinct = len({p.config_hash for p in outcome.points})
    same = f" ({distinct} distinct: equal points ran once)" if distinct != len(outcome.points) else ""
    lines = [f"sweep: {len(outcome.points)} points{same}, {len(ok)} ok, {len(failed)} failed; ran {outcome.ran} now, "
             f"skipped {outcome.skipped} already finished; results in {out_dir}"]
    if body:
        more = f" (fastest {limit} of {len(ok)})" if len(ok) > limit else ""
        lines += [f"\nby latency{more}", table(body, header)]
    for r in failed:
        lines.append(f"point {_point_label(r)} {r['values']}: {r['status']}: {r['error']}")
    return "\n".join(lines)


def _point_label(row: dict[str, Any]) -> str:
    """Every point number that produced this row (equal points run once)."""
    return ",".join(map(str, row.get("points", [row["point"]])))
