"""`mixpe-sim plot DIR`: PNGs from whatever a run, step, compare or sweep wrote into DIR.

timeline.csv -> bandwidth.png, occupancy.png; result.json of a run/step -> stalls_per_op.png and
roofline.png; result.json of compare -> compare.png; sweep results -> pareto.png.
matplotlib is an optional extra (`pip install 'mixpe-sim[plot]'`).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from mixpe_sim.arch.pe import parallelism
from mixpe_sim.config.models import HardwareConfig
from mixpe_sim.engine.counters import STALL_CAUSES
from mixpe_sim.errors import MixpeError
from mixpe_sim.report.output import write_atomic

DPI = 120
COMPUTE_COLOR = "tab:green"
STALL_COLORS = {"weight_load": "tab:blue", "activation_load": "tab:orange", "dependency": "tab:brown",
                "vector": "tab:red", "output_writeback": "tab:pink", "dequant": "tab:olive",
                "buffer_port": "tab:purple", "drain": "tab:gray"}


class MissingPlotExtra(MixpeError):
    def __init__(self) -> None:
        super().__init__("plotting needs matplotlib: pip install 'mixpe-sim[plot]'")


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise MissingPlotExtra() from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_dir(out_dir: Path) -> list[Path]:
    """Draw every plot DIR has data for; returns the PNGs written."""
    if not out_dir.is_dir():
        raise MixpeError(f"{out_dir}: not a directory")
    plt = _pyplot()
    sources = {"timeline.csv": _timeline_plots, "result.json": _result_plots, "results.jsonl": _sweep_plots}
    written: list[Path] = []
    for name, draw in sources.items():
        path = out_dir / name
        if not path.exists():
            continue
        try:
            written += draw(plt, path, out_dir)
        except (ValueError, KeyError, TypeError, IndexError) as exc:  # a damaged or foreign file
            raise MixpeError(f"{path}: not mixpe-sim output ({type(exc).__name__}: {exc})") from None
    if not written:
        raise MixpeError(f"{out_dir}: nothing to plot (expected {', '.join(sources)})")
    return written


def _timeline_plots(plt: Any, path: Path, out_dir: Path) -> list[Path]:
    rows = _read_csv(path)
    return [_bandwidth(plt, rows, out_dir), _occupancy(plt, rows, out_dir)]


def _result_plots(plt: Any, path: Path, out_dir: Path) -> list[Path]:
    result = json.loads(path.read_text())
    written = []
    if "per_op" in result:
        written += [_stalls_per_op(plt, result, out_dir), _roofline(plt, result, out_dir)]
    if "rows" in result and "reference" in result:
        written.append(_compare(plt, result, out_dir))
    return written


def _sweep_plots(plt: Any, path: Path, out_dir: Path) -> list[Path]:
    return [_pareto(plt, path, out_dir)]


def _read_csv(path: Path) -> list[dict[str, float]]:
    with path.open() as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def _save(plt: Any, fig: Any, path: Path) -> Path:
    png = io.BytesIO()
    try:
        fig.savefig(png, format="png", dpi=DPI, metadata={"Software": None})
    finally:
        plt.close(fig)
    write_atomic(path, png.getvalue())
    return path


def _time_axis(rows: list[dict[str, float]]) -> tuple[list[float], str]:
    end = rows[-1]["end_s"] if rows else 0.0
    scale, unit = (1e3, "ms") if end >= 1e-3 else (1e6, "us")
    return [row["start_s"] * scale for row in rows], f"time ({unit})"


def _bandwidth(plt: Any, rows: list[dict[str, float]], out_dir: Path) -> Path:
    x, label = _time_axis(rows)
    fig, ax = plt.subplots(figsize=(10, 4))
    for key in sorted(k for k in rows[0] if k.endswith("_bw_bytes_per_s")):
        ax.step(x, [row[key] / 1e9 for row in rows], where="post", label=key.removesuffix("_bw_bytes_per_s"))
    ax.set_xlabel(label)
    ax.set_ylabel("bandwidth (GB/s)")
    ax.set_title("Bandwidth per component (window averages)")
    ax.legend(loc="upper right", fontsize="small")
    ax.grid(alpha=0.3)
    return _save(plt, fig, out_dir / "bandwidth.png")


def _occupancy(plt: Any, rows: list[dict[str, float]], out_dir: Path) -> Path:
    x, label = _time_axis(rows)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True)
    for key in sorted(k for k in rows[0] if k.startswith("buffer.")):
        name = key.split(".")[1]
        top.step(x, [row[key] / 1024 for row in rows], where="post", label=name)
    top.set_ylabel("occupancy (KiB, avg)")
    top.set_title("Buffer occupancy and where the PE array's time went")
    top.legend(loc="upper right", fontsize="small")
    top.grid(alpha=0.3)
    widths = [row["end_s"] - row["start_s"] for row in rows]
    causes = [c for c in STALL_CAUSES if f"stall_{c}_s" in rows[0]]
    bottom_acc = [0.0] * len(rows)
    if "pe_utilization" in rows[0]:
        bottom.step(x, [row["pe_utilization"] for row in rows], where="post", color="black", label="PE utilisation")
    for cause in causes:
        share = [row[f"stall_{cause}_s"] / w if w else 0.0 for row, w in zip(rows, widths, strict=True)]
        bottom.fill_between(x, bottom_acc, [a + s for a, s in zip(bottom_acc, share, strict=True)], step="post",
                            alpha=0.5, color=STALL_COLORS[cause], label=f"stall: {cause}")
        bottom_acc = [a + s for a, s in zip(bottom_acc, share, strict=True)]
    bottom.set_ylim(0, 1.05)
    bottom.set_ylabel("fraction of window")
    bottom.set_xlabel(label)
    bottom.legend(loc="upper right", fontsize="x-small", ncol=2)
    bottom.grid(alpha=0.3)
    return _save(plt, fig, out_dir / "occupancy.png")


def _stalls_per_op(plt: Any, result: dict[str, Any], out_dir: Path) -> Path:
    ops = [op for op in result["per_op"] if op["busy_s"] + op["stall_s"] > 0]
    labels = [f"{op['phase']}:{op['op']}" for op in ops]
    fig, ax = plt.subplots(figsize=(10, max(3.0, 0.35 * len(ops) + 1)))
    left = [op["busy_s"] * 1e3 for op in ops]
    ax.barh(labels, left, color=COMPUTE_COLOR, label="compute")
    for cause in STALL_CAUSES:
        widths = [op.get(f"stall_{cause}_s", 0.0) * 1e3 for op in ops]
        if any(widths):
            ax.barh(labels, widths, left=left, color=STALL_COLORS[cause], label=cause)
            left = [a + w for a, w in zip(left, widths, strict=True)]
    ax.invert_yaxis()
    ax.set_xlabel("time (ms), all calls")
    ax.set_title("Where each op's time went")
    ax.legend(loc="lower right", fontsize="small")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _save(plt, fig, out_dir / "stalls_per_op.png")


def _roofline(plt: Any, result: dict[str, Any], out_dir: Path) -> Path:
    hw = HardwareConfig.model_validate(result["config"]["hardware"])
    peak_bw = hw.memory.peak_bw_bytes_per_s
    macs_per_cycle = hw.array.rows * hw.array.cols * parallelism(
        hw.pe.kind, hw.quant.weight_bits, hw.quant.activation_bits).macs_per_pe_cycle
    peak_macs = macs_per_cycle * hw.core_freq_hz
    ops = [op for op in result["per_op"] if op["macs"] > 0 and op.get("dram_bytes", 0) > 0]
    fig, ax = plt.subplots(figsize=(8, 5))
    intensities = [op["macs"] / op["dram_bytes"] for op in ops]
    low, high = min([*intensities, 0.1]) / 2, max([*intensities, 1000.0]) * 2
    xs = [low * (high / low) ** (i / 100) for i in range(101)]
    roof = [min(peak_macs, x * peak_bw) if peak_bw != float("inf") else peak_macs for x in xs]
    ax.loglog(xs, roof, color="black", label=f"roof: {peak_macs / 1e12:.2f} TMAC/s, {peak_bw / 1e9:.0f} GB/s")
    for op, intensity in zip(ops, intensities, strict=True):
        achieved = op["macs"] / (op["busy_s"] + op["stall_s"])
        marker = "o" if op["phase"] == "prefill" else "s"
        ax.loglog([intensity], [achieved], marker, label=f"{op['phase']}:{op['op']}")
    ax.set_xlabel("operational intensity (MACs per DRAM byte)")
    ax.set_ylabel("achieved MAC/s")
    ax.set_title(f"Roofline, {hw.name} (peak at W{hw.quant.weight_bits}A{hw.quant.activation_bits})")
    ax.legend(loc="lower right", fontsize="x-small", ncol=2)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return _save(plt, fig, out_dir / "roofline.png")


def _compare(plt: Any, result: dict[str, Any], out_dir: Path) -> Path:
    mean = result["mean"]
    names = list(mean)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(names)), 4))
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
    return _save(plt, fig, out_dir / "compare.png")


def _pareto(plt: Any, path: Path, out_dir: Path) -> Path:
    from mixpe_sim.sweep.store import latest_by_hash

    latest = latest_by_hash(path)
    points = sorted((row["metrics"]["latency_s"], row["metrics"]["energy_j"], f"p{row['point']}")
                    for row in latest.values() if row["status"] == "ok")
    front, best = [], float("inf")
    for latency, energy, point in points:
        if energy < best:
            front.append((latency, energy, point))
            best = energy
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.scatter([p[0] * 1e3 for p in points], [p[1] for p in points], color="tab:gray", label="design points")
    ax.plot([p[0] * 1e3 for p in front], [p[1] for p in front], "o-", color="tab:red", label="Pareto front")
    for latency, energy, point in front:
        ax.annotate(point, (latency * 1e3, energy), fontsize="x-small", xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("energy (J)")
    ax.set_title(f"Sweep: {len(points)} points, {len(front)} on the Pareto front")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(plt, fig, out_dir / "pareto.png")
