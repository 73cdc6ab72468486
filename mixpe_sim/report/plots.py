"""Figures from results: public functions return a matplotlib `Figure` (no pyplot, so the caller's
backend and open figures are left alone); `mixpe-sim plot DIR` saves them as PNGs.

timeline -> bandwidth.png, occupancy.png; a run/step result -> stalls_per_op.png, roofline.png;
compare -> compare.png; sweep -> pareto.png. matplotlib is an optional extra (`mixpe-sim[plot]`).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from mixpe_sim.errors import MixpeError
from mixpe_sim.report.output import write_atomic

DPI = 120
COMPUTE_COLOR = "tab:green"
STALL_COLORS = {"weight_load": "tab:blue", "activation_load": "tab:orange", "dependency": "tab:brown",
                "vector": "tab:red", "output_writeback": "tab:pink", "dequant": "tab:olive",
                "buffer_port": "tab:purple", "k_split_reduce": "tab:cyan", "drain": "tab:gray"}
Rows = list[dict[str, float | None]]  # None: an empty CSV cell


class MissingPlotExtra(MixpeError):
    def __init__(self) -> None:
        super().__init__("plotting needs matplotlib: pip install 'mixpe-sim[plot]'")


def _figure(width: float, height: float, rows: int = 1, sharex: bool = False) -> tuple[Any, Any]:
    try:
        import matplotlib  # noqa: F401  (fails first when the extra is missing)
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingPlotExtra() from None
    fig = Figure(figsize=(width, height))
    axes = fig.subplots(rows, 1, sharex=sharex)
    return fig, axes


def _as_dict(result: Any) -> dict[str, Any]:
    return result.to_dict() if hasattr(result, "to_dict") else result


def _timeline_rows(source: Any) -> Rows:
    """Timeline rows from a traced result (`.timeline`), a DataFrame or a list of row dicts."""
    timeline = getattr(source, "timeline", source)
    if timeline is None:
        raise MixpeError("no timeline: simulate with trace=True (or read timeline.csv)")
    if hasattr(timeline, "to_dict"):
        timeline = timeline.fillna(0.0).to_dict("records")
    return [{k: float(v) for k, v in row.items()} for row in timeline]


def _peak_bw(result: dict[str, Any] | None) -> float | None:
    if not result:
        return None
    memory = result.get("memory", {})
    if "prefill" in memory or "decode" in memory:  # a request: one set of stats per phase
        memory = memory.get("decode") or memory.get("prefill") or {}
    peak = memory.get("peak_bw_bytes_per_s")
    return float(peak) if peak else None


def _partial_note(result: dict[str, Any] | None) -> str:
    mode = (result or {}).get("mode", {})
    if mode.get("block_extrapolation"):
        return "time axis: the blocks simulated (the rest of the step is extrapolated; --exact traces all)"
    return ""


# ---------------------------------------------------------------- public figures


def plot_timeline(source: Any, result: Any = None) -> Any:
    """Bandwidth per component (with the memory's peak), buffer occupancy, and where the PE array's
    time went per window (compute and each stall cause, stacked to the whole window).

    `source`: a result simulated with `trace=True` (its `timeline`), a DataFrame or timeline.csv rows.
    """
    from mixpe_sim.results import Result

    rows = _timeline_rows(source)
    carrier = result if result is not None else (source if isinstance(source, Result) else None)
    info = _as_dict(carrier) if carrier is not None else None
    fig, (bw, occupancy, shares) = _figure(10, 8, rows=3, sharex=True)
    _draw_bandwidth(bw, rows, _peak_bw(info))
    _draw_occupancy(occupancy, rows)
    _draw_time_shares(shares, rows, _partial_note(info))
    fig.tight_layout()
    return fig


def plot_time_breakdown(result: Any) -> Any:
    """Per op: compute and each stall cause, stacked to the op's time (all its calls)."""
    r = _as_dict(result)
    ops = [op for op in r["per_op"] if op["busy_s"] + op["stall_s"] > 0]
    fig, ax = _figure(10, max(3.0, 0.35 * len(ops) + 1))
    labels = [f"{op['phase']}:{op['op']}" for op in ops]
    left = [op["busy_s"] * 1e3 for op in ops]
    ax.barh(labels, left, color=COMPUTE_COLOR, label="compute")
    for cause in _stall_causes(ops):
        widths = [op.get(f"stall_{cause}_s", 0.0) * 1e3 for op in ops]
        if any(widths):
            ax.barh(labels, widths, left=left, color=STALL_COLORS.get(cause), label=f"stall: {cause}")
            left = [a + w for a, w in zip(left, widths, strict=True)]
    ax.invert_yaxis()
    ax.set_xlabel("time (ms), all calls")
    ax.set_title(f"Where each op's time went ({r['kind']}, {r['time_s'] * 1e3:.3f} ms in all)")
    ax.legend(loc="lower right", fontsize="small")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_roofline(result: Any) -> Any:
    """Each op's achieved MAC rate against its operational intensity, under the design's roof."""
    from mixpe_sim.arch.pe import peak_macs_per_cycle
    from mixpe_sim.config.models import HardwareConfig

    r = _as_dict(result)
    hw = HardwareConfig.model_validate(r["config"]["hardware"])
    peak_bw = hw.memory.peak_bw_bytes_per_s
    peak_macs = peak_macs_per_cycle(hw, hw.quant.weight_bits, hw.quant.activation_bits) * hw.core_freq_hz
    ops = [op for op in r["per_op"] if op["macs"] > 0 and op.get("dram_bytes", 0) > 0]
    fig, ax = _figure(8, 5)
    intensities = [op["macs"] / op["dram_bytes"] for op in ops]
    low, high = min([*intensities, 0.1]) / 2, max([*intensities, 1000.0]) * 2
    xs = [low * (high / low) ** (i / 100) for i in range(101)]
    roof = [min(peak_macs, x * peak_bw) if math.isfinite(peak_bw) else peak_macs for x in xs]
    ax.loglog(xs, roof, color="black", label=f"roof: {peak_macs / 1e12:.2f} TMAC/s, {peak_bw / 1e9:.0f} GB/s")
    for op, intensity in zip(ops, intensities, strict=True):
        achieved = op["macs"] / (op["busy_s"] + op["stall_s"])
        ax.loglog([intensity], [achieved], "o" if op["phase"] == "prefill" else "s", label=f"{op['phase']}:{op['op']}")
    ax.set_xlabel("operational intensity (MACs per DRAM byte)")
    ax.set_ylabel("achieved MAC/s")
    ax.set_title(f"Roofline, {hw.name} (peak at W{hw.quant.weight_bits}A{hw.quant.activation_bits})")
    ax.legend(loc="lower right", fontsize="x-small", ncol=2)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig


def plot_compare(result: dict[str, Any]) -> Any:
    mean = result["mean"]
    names = list(mean)
    fig, ax = _figure(max(6.0, 1.1 * len(names)), 4)
    positions = range(len(names))
    ax.bar([p - 0.2 for p in positions], [mean[n]["norm_time"] for n in names], width=0.4, label="time")
    ax.bar([p + 0.2 for p in positions], [mean[n]["norm_energy"] for n in names], width=0.4, label="energy")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(list(positions), names, rotation=20)
    ax.set_ylabel(f"normalized to {result['reference']}")
    ax.set_title("Time and energy, mean over workloads (lower is better)")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_pareto(points: list[tuple[float, float, str]]) -> Any:
    """(latency s, energy J, label) per design point, with the Pareto front."""
    points = sorted(points)
    front, best = [], float("inf")
    for latency, energy, label in points:
        if energy < best:
            front.append((latency, energy, label))
            best = energy
    fig, ax = _figure(8, 5)
    ax.scatter([p[0] * 1e3 for p in points], [p[1] for p in points], color="tab:gray", label="design points")
    ax.plot([p[0] * 1e3 for p in front], [p[1] for p in front], "o-", color="tab:red", label="Pareto front")
    for latency, energy, label in front:
        ax.annotate(label, (latency * 1e3, energy), fontsize="x-small", xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("energy (J)")
    ax.set_title(f"Sweep: {len(points)} points, {len(front)} on the Pareto front")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- panels


def _time_axis(rows: Rows) -> tuple[list[float], str]:
    end = rows[-1]["end_s"] if rows else 0.0
    scale, unit = (1e3, "ms") if end >= 1e-3 else (1e6, "us")
    return [row["start_s"] * scale for row in rows], f"time ({unit})"


def _draw_bandwidth(ax: Any, rows: Rows, peak_bw: float | None) -> None:
    x, label = _time_axis(rows)
    for key in sorted(k for k in rows[0] if k.endswith("_bw_bytes_per_s")):
        ax.step(x, [row[key] / 1e9 for row in rows], where="post", label=key.removesuffix("_bw_bytes_per_s"))
    if peak_bw:
        ax.axhline(peak_bw / 1e9, color="black", linestyle="--", linewidth=0.8, label="memory peak")
    ax.set_xlabel(label)
    ax.set_ylabel("bandwidth (GB/s)")
    ax.set_title("Bandwidth per component (window averages)")
    ax.legend(loc="upper right", fontsize="small")
    ax.grid(alpha=0.3)


def _draw_occupancy(ax: Any, rows: Rows) -> None:
    x, label = _time_axis(rows)
    for key in sorted(k for k in rows[0] if k.startswith("buffer.")):
        ax.step(x, [row[key] / 1024 for row in rows], where="post", label=key.split(".")[1])
    ax.set_xlabel(label)
    ax.set_ylabel("occupancy (KiB, avg)")
    ax.set_title("Buffer occupancy")
    ax.legend(loc="upper right", fontsize="small")
    ax.grid(alpha=0.3)


def _draw_time_shares(ax: Any, rows: Rows, note: str) -> None:
    """Compute (PE-array busy, the window minus its stalls) and each stall cause, stacked to 1."""
    x, label = _time_axis(rows)
    widths = [row["end_s"] - row["start_s"] for row in rows]
    causes = [k[len("stall_"):-2] for k in rows[0] if k.startswith("stall_") and k.endswith("_s")]
    shares = {c: [row.get(f"stall_{c}_s", 0.0) / w if w else 0.0 for row, w in zip(rows, widths, strict=True)]
              for c in causes}
    compute = [max(0.0, 1.0 - sum(shares[c][i] for c in causes)) for i in range(len(rows))]
    ax.fill_between(x, 0, compute, step="post", alpha=0.6, color=COMPUTE_COLOR, label="compute")
    below = compute
    for cause in causes:
        top = [b + s for b, s in zip(below, shares[cause], strict=True)]
        ax.fill_between(x, below, top, step="post", alpha=0.5, color=STALL_COLORS.get(cause), label=f"stall: {cause}")
        below = top
    if "pe_utilization" in rows[0]:
        ax.step(x, [row["pe_utilization"] for row in rows], where="post", color="black", label="PE utilisation")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("fraction of window")
    ax.set_xlabel(label)
    ax.set_title("Where the PE array's time went" + (f"\n{note}" if note else ""), fontsize="medium")
    ax.legend(loc="upper right", fontsize="x-small", ncol=2)
    ax.grid(alpha=0.3)


def _stall_causes(ops: list[dict[str, Any]]) -> list[str]:
    return [k[len("stall_"):-2] for k in (ops[0] if ops else {}) if k.startswith("stall_") and k.endswith("_s")]


# ---------------------------------------------------------------- mixpe-sim plot DIR


def plot_dir(out_dir: Path) -> list[Path]:
    """Draw every plot DIR has data for; returns the PNGs written."""
    if not out_dir.is_dir():
        raise MixpeError(f"{out_dir}: not a directory")
    _figure(1, 1)  # the extra is there, or one clear line
    result = _read_result(out_dir / "result.json")
    written: list[Path] = []
    try:
        if result and result.get("kind") in ("serve", "serve_load"):
            from mixpe_sim.report.serving import plot_serve_dir

            return plot_serve_dir(out_dir, result)
        if (out_dir / "timeline.csv").exists():
            written += _timeline_pngs(_read_csv(out_dir / "timeline.csv"), result, out_dir)
        if result and "per_op" in result:
            written.append(save_png(plot_time_breakdown(result), out_dir / "stalls_per_op.png"))
            written.append(save_png(plot_roofline(result), out_dir / "roofline.png"))
        if result and "rows" in result and "reference" in result:
            written.append(save_png(plot_compare(result), out_dir / "compare.png"))
        if (out_dir / "results.jsonl").exists():
            written.append(save_png(plot_pareto(_sweep_points(out_dir / "results.jsonl")), out_dir / "pareto.png"))
    except (ValueError, KeyError, TypeError, IndexError) as exc:  # a damaged or foreign file
        raise MixpeError(f"{out_dir}: not mixpe-sim output ({type(exc).__name__}: {exc})") from None
    if not written:
        raise MixpeError(f"{out_dir}: nothing to plot (expected timeline.csv, result.json, results.jsonl)")
    return written


def _timeline_pngs(rows: Rows, result: dict[str, Any] | None, out_dir: Path) -> list[Path]:
    fig, ax = _figure(10, 4)
    _draw_bandwidth(ax, rows, _peak_bw(result))
    fig.tight_layout()
    paths = [save_png(fig, out_dir / "bandwidth.png")]
    fig, (top, bottom) = _figure(10, 5.5, rows=2, sharex=True)
    _draw_occupancy(top, rows)
    _draw_time_shares(bottom, rows, _partial_note(result))
    fig.tight_layout()
    paths.append(save_png(fig, out_dir / "occupancy.png"))
    return paths


def _read_result(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise MixpeError(f"{path}: not mixpe-sim output ({exc})") from None
    if not isinstance(data, dict):
        raise MixpeError(f"{path}: not mixpe-sim output (not a JSON object)")
    return data


def _sweep_points(path: Path) -> list[tuple[float, float, str]]:
    from mixpe_sim.sweeps.store import latest_by_hash

    return [(row["metrics"]["latency_s"], row["metrics"]["energy_j"], f"p{row['point']}")
            for row in latest_by_hash(path).values() if row["status"] == "ok"]


def _read_csv(path: Path) -> Rows:
    with path.open() as handle:
        try:
            # an empty cell is a value the run does not have (a serving run's KV occupancy on unbounded memory)
            return [{k: float(v) if v != "" else None for k, v in row.items()} for row in csv.DictReader(handle)]
        except (ValueError, TypeError) as exc:
            raise MixpeError(f"{path}: not mixpe-sim output ({exc})") from None


def save_png(fig: Any, path: Path) -> Path:
    """The figure as a PNG, written atomically (a reader never sees half a file)."""
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=DPI, metadata={"Software": None})
    write_atomic(path, png.getvalue())
    return path
