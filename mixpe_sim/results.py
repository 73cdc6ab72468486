"""Typed results: every key of the CLI's `--json` output as an attribute, with its unit in its name.

`to_dict()` is exactly what `mixpe-sim ... --json` prints; `to_frame()` gives pandas rows (per op for
steps and requests, one row for a GEMM, one per request for serving); a result also reads like the
dict it came from (`result["step_s"]`). docs/results.md defines every key.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from mixpe_sim.report.tables import fmt_time


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        from mixpe_sim.errors import MixpeError

        raise MixpeError("DataFrames need pandas: pip install 'mixpe-sim[notebook]'") from None
    return pandas


NOT_JSON = {"json": False}  # field metadata: an attribute that is not part of the JSON result


@dataclass(frozen=True, repr=False)
class Result:
    """What every simulation result has (docs/results.md, "Common keys")."""

    kind: str
    schema_version: int
    time_s: float  # the simulated time this result covers
    energy_j: float
    energy_breakdown_j: dict[str, float]
    dram_energy_breakdown_j: dict[str, float]
    dram_bytes_read: int
    dram_bytes_written: int
    dram_bw_utilization: float
    pe_utilization: float
    macs: int
    dequant_ops: int
    compute_s: float
    stall_breakdown_s: dict[str, float]
    time_breakdown_s: dict[str, float]
    memory: dict[str, Any]
    area_mm2: float
    area_breakdown_mm2: dict[str, float]
    process_nm: int
    bottleneck: dict[str, Any]
    events: int
    wall_s: float
    config: dict[str, Any]
    version: str

    headline: ClassVar[tuple[str, ...]] = ("time_s", "energy_j")

    @classmethod
    def from_dict(cls, data: dict[str, Any], **extra: Any) -> Result:
        return cls(**data, **extra)

    def to_dict(self) -> dict[str, Any]:
        """The result as the CLI's `--json` prints it."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.metadata.get("json", True)}

    def to_frame(self) -> Any:
        """One row of the scalar keys (subclasses with per-op data give one row per op)."""
        pd = _pandas()
        return pd.DataFrame([{k: v for k, v in self.to_dict().items() if not isinstance(v, dict | list)}])

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def bound(self) -> str:
        """What binds the result, in one line per phase."""
        if "summary" in self.bottleneck:
            return str(self.bottleneck["summary"])
        return "; ".join(f"{phase} {b['summary']}" for phase, b in self.bottleneck.items())

    def _label(self) -> str:
        return self.kind

    def __repr__(self) -> str:
        figures = ", ".join(f"{key.removesuffix('_s')} {fmt_time(v)}" if key.endswith("_s") else f"{v:.4g} J"
                            for key in self.headline if (v := getattr(self, key)) is not None)
        return f"{type(self).__name__}({self._label()}: {figures}; {self.bound()})"

    def _repr_html_(self) -> str:
        rows = [(key, fmt_time(v) if key.endswith("_s") else f"{v:.4g}") for key in self.headline
                if (v := getattr(self, key)) is not None]
        rows += [("DRAM bandwidth used", f"{self.dram_bw_utilization:.1%}"),
                 ("PE utilisation", f"{self.pe_utilization:.1%}"), ("area", f"{self.area_mm2:.2f} mm²"),
                 ("bound by", self.bound())]
        body = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                       for k, v in rows)
        return f"<b>{html.escape(type(self).__name__)}</b> {html.escape(self._label())}<table>{body}</table>"


@dataclass(frozen=True, repr=False)
class GemmResult(Result):
    cycles: int
    compute_cycles: int
    stall_cycles: int
    tiling: dict[str, Any]
    shape: dict[str, int]

    def _label(self) -> str:
        s = self.shape
        return f"M={s['m']} N={s['n']} K={s['k']} on {self.config['hardware']['name']}"


@dataclass(frozen=True, repr=False)
class _PerOpResult(Result):
    per_op: list[dict[str, Any]]
    by_group: dict[str, Any]
    mode: dict[str, Any]

    def to_frame(self) -> Any:
        """One row per op (and phase): busy and stalled time by cause, MACs, DRAM bytes."""
        return _pandas().DataFrame(self.per_op)


@dataclass(frozen=True, repr=False)
class StepResult(_PerOpResult):
    step_s: float
    phase: str
    context: int
    tokens_per_s: float
    per_layer_s: list[float]
    # with trace=True: the windowed timeline and every traced span (pandas DataFrames), not in to_dict()
    timeline: Any = field(default=None, repr=False, compare=False, metadata=NOT_JSON)
    spans: Any = field(default=None, repr=False, compare=False, metadata=NOT_JSON)

    headline: ClassVar[tuple[str, ...]] = ("step_s", "energy_j")

    def _label(self) -> str:
        return f"{self.phase} at context {self.context} on {self.config['hardware']['name']}"


@dataclass(frozen=True, repr=False)
class RequestResult(_PerOpResult):
    phases: dict[str, dict[str, float]]
    ttft_s: float
    tpot_s: float | None
    tpot_note: str
    tpot_per_step_s: list[float]
    e2e_s: float
    tokens_per_s: float
    per_layer: dict[str, list[float]]
    decode_steps: list[dict[str, Any]]
    timeline: Any = field(default=None, repr=False, compare=False, metadata=NOT_JSON)
    spans: Any = field(default=None, repr=False, compare=False, metadata=NOT_JSON)

    headline: ClassVar[tuple[str, ...]] = ("ttft_s", "tpot_s", "e2e_s", "energy_j")

    def _label(self) -> str:
        wl = self.config["workload"]
        return f"prompt {wl['prompt']} + {wl['gen']} tokens on {self.config['hardware']['name']}"


@dataclass(frozen=True, repr=False)
class ServingResult(Result):
    """A serving run (docs/serving.md): latency percentiles, throughput, energy per token, and how
    well the reused step latencies match the simulation (`step_model_error`)."""

    qps: float | None
    requests: int
    completed: int
    ttft_s: dict[str, float | None]
    tpot_s: dict[str, float | None]
    e2e_s: dict[str, float | None]
    queue_s: dict[str, float | None]
    duration_s: float
    throughput_tokens_per_s: float
    throughput_total_tokens_per_s: float
    throughput_requests_per_s: float
    goodput_requests_per_s: float
    slo: dict[str, Any]
    energy_j_per_token: float
    preemptions: int
    iterations: int
    batch: dict[str, Any]
    step_model_error: float | None
    step_model_energy_error: float | None
    step_model: dict[str, Any]
    # one row per request / per iteration (lists of dicts; --out writes them as CSV), not in to_dict()
    per_request: list[dict[str, Any]] = field(default_factory=list, repr=False, compare=False, metadata=NOT_JSON)
    timeline: list[dict[str, Any]] = field(default_factory=list, repr=False, compare=False, metadata=NOT_JSON)

    headline: ClassVar[tuple[str, ...]] = ("duration_s", "energy_j")

    def to_frame(self) -> Any:
        """One row per request: arrival, queueing, TTFT, TPOT, end-to-end time, preemptions."""
        return _pandas().DataFrame(self.per_request)

    def timeline_frame(self) -> Any:
        """One row per iteration: start, end, batch, prefill tokens, decodes, KV occupancy, queue."""
        return _pandas().DataFrame(self.timeline)

    def _label(self) -> str:
        wl = self.config["workload"]
        return (f"{self.requests} requests at {self.qps if self.qps is not None else 'trace'} req/s, "
                f"{wl['policy']} on {self.config['hardware']['name']}: TTFT p50 {fmt_time(self.ttft_s['p50'] or 0)}, "
                f"TPOT p50 {fmt_time(self.tpot_s['p50'] or 0)}, {self.throughput_tokens_per_s:.1f} tok/s")


@dataclass(frozen=True, repr=False)
class ServingLoadResult:
    """`serve --qps 1,2,4,8`: one ServingResult per load, simulated with one shared step model."""

    loads: list[ServingResult]

    def to_dict(self) -> dict[str, Any]:
        first = self.loads[0].to_dict()
        return {"kind": "serve_load", "schema_version": first["schema_version"],
                "loads": [r.to_dict() for r in self.loads], "wall_s": sum(r.wall_s for r in self.loads),
                "config": first["config"], "version": first["version"]}

    def to_frame(self) -> Any:
        """One row per load: p50/p99 TTFT and TPOT, throughput, energy per token, model error."""
        return _pandas().DataFrame([load_row(r.to_dict()) for r in self.loads])

    def __repr__(self) -> str:
        return f"ServingLoadResult({len(self.loads)} loads: {', '.join(str(r.qps) for r in self.loads)} req/s)"


def load_row(r: dict[str, Any]) -> dict[str, Any]:
    """The latency-vs-load figures of one serving result."""
    return {"qps": r["qps"], "ttft_p50_s": r["ttft_s"]["p50"], "ttft_p99_s": r["ttft_s"]["p99"],
            "tpot_p50_s": r["tpot_s"]["p50"], "tpot_p99_s": r["tpot_s"]["p99"],
            "throughput_tokens_per_s": r["throughput_tokens_per_s"],
            "goodput_requests_per_s": r["goodput_requests_per_s"], "energy_j_per_token": r["energy_j_per_token"],
            "preemptions": r["preemptions"], "step_model_error": r["step_model_error"]}


RESULT_TYPES: dict[str, type[Result]] = {"gemm": GemmResult, "step": StepResult, "request": RequestResult,
                                         "serve": ServingResult}


def result_from_dict(data: dict[str, Any], **extra: Any) -> Result:
    """The typed result of a result dict (as `--json` prints or result.json holds)."""
    return RESULT_TYPES[data["kind"]].from_dict(data, **extra)
