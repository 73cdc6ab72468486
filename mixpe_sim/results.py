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


RESULT_TYPES: dict[str, type[Result]] = {"gemm": GemmResult, "step": StepResult, "request": RequestResult}


def result_from_dict(data: dict[str, Any], **extra: Any) -> Result:
    """The typed result of a result dict (as `--json` prints or result.json holds)."""
    return RESULT_TYPES[data["kind"]].from_dict(data, **extra)
