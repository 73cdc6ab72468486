"""Iteration latencies (and everything else a step measures) from the discrete-event model, reused.

Simulating every iteration of a serving run would take hours; its iterations differ in batch size
and contexts. Each iteration is instead predicted as

    T(iteration) = E(iteration) x r,    r = T_DES / E of simulated "anchor" steps nearby,

where E is the closed-form step estimate (workload/estimate.py), which already carries what makes
step time jump (array folds and K-split factors in the batch, attention blocks in the context), and
r, the part only the simulation knows (overlap between ops, DRAM efficiency, pipeline bubbles),
varies slowly. How r is found:
  * decode-only iterations (B sequences, mean context c): r is interpolated in B between anchors of
    B uniform sequences of context `base` (the power of two nearest c). The anchors start on the
    powers of two p and, above p, on p + 1 (the first batch with a remainder row tile, its own
    tiling regime), and an interval is halved while its two ends differ by more than RATIO_TOLERANCE,
    so r's own steps (where the tiling changes what binds) get anchors on both sides. The change of
    r with context is interpolated (in log c) from anchors at the powers of two only.
  * iterations with prefill work: the first iteration that falls into a cell (prefill tokens in
    factors of 4, decodes in factors of 2) is simulated exactly; the cell's later iterations use its r.
A prediction is a weighted sum of anchor measurements, each scaled from the anchor to the step by
the estimate of what it goes with (time, DRAM traffic or MACs: SCALES), so a run's energy, DRAM
traffic and stall breakdown come from the same simulated steps as its time.

`check` measures what the reuse costs: it simulates a sample of real iterations exactly and
reports the largest relative time error (`step_model_error`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from mixpe_sim.config.models import HardwareConfig
from mixpe_sim.energy import DRAM_COMMAND_CLASSES, leakage_power_w
from mixpe_sim.runs.llm import StepOutcome, simulate_shape
from mixpe_sim.runs.tally import Tally, combine
from mixpe_sim.units import PS_PER_S
from mixpe_sim.workload.estimate import StepEstimate, StepEstimator
from mixpe_sim.workload.models import ModelSpec
from mixpe_sim.workload.shapes import SequenceShape, StepShape

# An interval of anchors whose ratios differ by more than this is halved (one anchor in between).
# Chosen by measurement (docs/serving.md "step_model_error"): with 0.8 % the largest sampled error
# of the 1000-request benchmark is 0.15 % (0.13 % with 0.4 %, at five more anchors and 40 % more time).
RATIO_TOLERANCE = 0.008
# Iterations with prefill work share an anchor within a cell of prefill tokens (factors of 4) x decodes
# (factors of 2): assumed widths, checked by the sampled step_model_error of every run.
PREFILL_CELL_BASE = 4
DECODE_CELL_BASE = 2
LOG_ROUNDING = 1e-9  # keeps exact powers of the cell bases in their own cell despite float log
DEFAULT_CHECK_SAMPLES = 8


# How each measured quantity of an anchor carries over to a nearby step: with its time, its DRAM
# traffic or its work (MACs), each from the closed-form estimate of both steps.
SCALES = ("time", "traffic", "work")


# DRAM energy that goes with the bytes moved (refresh and background go with time)
TRAFFIC_KEYS = (*(f"dram_energy.{c}" for c in DRAM_COMMAND_CLASSES if c != "refresh"), "dram_bytes")


def _scale_of(key: str) -> str:
    if key.startswith(TRAFFIC_KEYS):
        return "traffic"
    if key in ("macs", "dequant_ops", "active_pe_cycles", "reduce_ops", "vector_elements", "energy.core_dynamic",
               "energy.buffer") or key.startswith("buffer."):
        return "work"
    return "time"  # time, stalls, background and refresh energy, PE leakage


@dataclass(frozen=True)
class Anchor:
    """One simulated step: its measurements split by how they scale, its estimate, its cost."""

    label: str
    parts: dict[str, Tally]  # scale -> the measurements that scale with it
    estimate: StepEstimate
    events: int
    wall_s: float

    @classmethod
    def of(cls, hw: HardwareConfig, label: str, tally: Tally, estimate: StepEstimate, events: int,
           wall_s: float) -> Anchor:
        global_keys = {k: v for k, v in tally.items() if not k.startswith(("op.", "group.", "layer."))}
        # PE leakage goes with time, the rest of the core's energy with the work
        leakage = leakage_power_w(hw) * global_keys["time_ps"] / PS_PER_S
        global_keys["energy.core_dynamic"] = global_keys.pop("energy.core", 0.0) - leakage
        global_keys["energy.core_leakage"] = leakage
        # the DRAM's command energy is regrouped from its classes after scaling
        global_keys.pop("energy.dram", None)
        parts: dict[str, Tally] = {scale: {} for scale in SCALES}
        for key, value in global_keys.items():
            parts[_scale_of(key)][key] = value
        return cls(label, parts, estimate, events, wall_s)

    @property
    def time_s(self) -> float:
        return self.parts["time"]["time_ps"] / PS_PER_S

    def energy_j(self, scale: str) -> float:
        """Energy of the measurements that go with `scale` (the DRAM's by command class)."""
        return sum(v for k, v in self.parts[scale].items()
                   if k.startswith("dram_energy.") or (k.startswith("energy.") and k != "energy.dram_static"))

    @property
    def total_energy_j(self) -> float:
        return sum(self.energy_j(scale) for scale in SCALES)

    @property
    def ratio(self) -> float:
        """Simulated picoseconds per estimated cycle."""
        return self.parts["time"]["time_ps"] / self.estimate.cycles

    def factors(self, estimate: StepEstimate) -> dict[str, float]:
        """How much more of each scale a step with `estimate` has than this anchor."""
        def ratio(mine: float, theirs: float) -> float:
            return theirs / mine if mine else 1.0
        return {"time": ratio(self.estimate.cycles, estimate.cycles),
                "traffic": ratio(self.estimate.dram_bytes, estimate.dram_bytes),
                "work": ratio(self.estimate.macs, estimate.macs)}


def tally_of_parts(weights: dict[tuple[int, str], tuple[float, Anchor]]) -> Tally:
    """The summed prediction: sum of weight x the anchor's measurements of that scale, with the core's
    and the DRAM's energy put back together as the other results report them."""
    tally = combine((w, anchor.parts[scale]) for (_, scale), (w, anchor) in weights.items())
    tally["energy.core"] = tally.pop("energy.core_dynamic", 0.0) + tally.pop("energy.core_leakage", 0.0)
    tally["energy.dram"] = sum(tally.get(f"dram_energy.{c}", 0.0) for c in DRAM_COMMAND_CLASSES)
    return tally


@dataclass(frozen=True)
class Prediction:
    time_s: float
    energy_j: float
    weights: list[tuple[float, Anchor, dict[str, float]]]  # (coefficient, anchor, factors per scale)


@dataclass
class StepModel:
    hw: HardwareConfig
    model: ModelSpec
    kv_bits: int
    quantize_lm_head: bool
    max_batch: int
    exact: bool = False  # anchors and checks simulate every block (no block extrapolation)
    _estimator: StepEstimator | None = field(default=None, repr=False)
    _decode: dict[tuple[int, int], Anchor] = field(default_factory=dict, repr=False)
    _cells: dict[tuple[int, int], Anchor] = field(default_factory=dict, repr=False)
    _exact: dict[tuple[SequenceShape, ...], Anchor] = field(default_factory=dict, repr=False)

    @property
    def estimator(self) -> StepEstimator:
        if self._estimator is None:
            self._estimator = StepEstimator(self.hw, self.model, self.kv_bits, self.quantize_lm_head)
        return self._estimator

    @property
    def anchors(self) -> list[Anchor]:
        """Every step simulated so far (anchors of both kinds and exact checks)."""
        return list(self._exact.values())

    def predict(self, sequences: Sequence[SequenceShape]) -> Prediction:
        simulated = self._exact.get(_composition(sequences))
        if simulated is not None:  # an anchor, or a check of an earlier load: its simulation is the answer
            return Prediction(simulated.time_s, simulated.total_energy_j,
                              [(1.0, simulated, dict.fromkeys(SCALES, 1.0))])
        shape = self.estimator.shape_of(tuple(sequences))
        decodes = sum(1 for s in sequences if s.is_decode)
        if decodes == len(sequences):
            mean_context = sum(s.context for s in sequences) / decodes
            coefficients = self._decode_coefficients(decodes, mean_context)
        else:
            coefficients = [(1.0, self._cell_anchor(shape, decodes))]
        estimate = self.estimator.estimate(shape)
        weights = [(c, a, a.factors(estimate)) for c, a in coefficients]
        return Prediction(
            time_s=sum(c * f["time"] * a.time_s for c, a, f in weights),
            energy_j=sum(c * f[scale] * a.energy_j(scale) for c, a, f in weights for scale in SCALES),
            weights=weights)

    def simulated(self, sequences: Sequence[SequenceShape]) -> bool:
        return _composition(sequences) in self._exact

    def simulate(self, sequences: Sequence[SequenceShape], label: str) -> Anchor:
        """The step simulated exactly (cached by composition)."""
        key = _composition(sequences)
        if key not in self._exact:
            shape = self.estimator.shape_of(key)
            started = time.perf_counter()
            outcome: StepOutcome = simulate_shape(self.hw, self.model, shape, self.exact, label=label)
            self._exact[key] = Anchor.of(self.hw, label, outcome.tally, self.estimator.estimate(shape),
                                         outcome.events, time.perf_counter() - started)
        return self._exact[key]

    # -- decode-only iterations -----------------------------------------------------------------

    def _decode_anchor(self, batch: int, context: int) -> Anchor:
        key = (batch, context)
        if key not in self._decode:
            self._decode[key] = self.simulate([SequenceShape(1, context - 1)] * batch,
                                              f"anchor: {batch} decodes at context {context}")
        return self._decode[key]

    def _decode_coefficients(self, batch: int, context: float) -> list[tuple[float, Anchor]]:
        base = max(2, 2 ** round(math.log2(context)))
        terms = self._fine(batch, base)
        offset = math.log2(context / base)  # in octaves, |offset| <= 0.5
        if abs(offset) > LOG_ROUNDING:
            other = base * 2 if offset > 0 else max(1, base // 2)
            weight = abs(offset) / abs(math.log2(other / base)) if other != base else 0.0
            terms += [(weight * c, a) for c, a in self._coarse(batch, other)]
            terms += [(-weight * c, a) for c, a in self._coarse(batch, base)]
        return terms

    def _dyadic(self, batch: int) -> tuple[int, int]:
        """The anchors around `batch`: the power of two at or below it, or, above a power of two,
        the batch one past it (the first with a remainder row tile: its own tiling regime, which
        interpolation from the power of two itself would miss by up to 1 %), and the next power of two."""
        low = 1 << (batch.bit_length() - 1)
        return (low if batch == low else low + 1), min(2 * low, max(self.max_batch, batch))

    def _coarse(self, batch: int, context: int) -> list[tuple[float, Anchor]]:
        """Powers of two only: the context correction is a difference of two contexts' anchors at the
        same batches, in which a tiling regime's offset cancels."""
        _, high = self._dyadic(batch)
        low = 1 << (batch.bit_length() - 1)
        if batch == low:
            return [(1.0, self._decode_anchor(low, context))]
        return _between(batch, low, high, self._decode_anchor(low, context), self._decode_anchor(high, context))

    def _fine(self, batch: int, context: int) -> list[tuple[float, Anchor]]:
        low, high = self._dyadic(batch)
        if batch == low:
            return [(1.0, self._decode_anchor(low, context))]
        while True:
            a, b = self._decode_anchor(low, context), self._decode_anchor(high, context)
            if batch in (low, high) or high - low < 2 or abs(a.ratio / b.ratio - 1) <= RATIO_TOLERANCE:
                return _between(batch, low, high, a, b)
            middle = (low + high) // 2
            low, high = (low, middle) if batch <= middle else (middle, high)

    # -- iterations with prefill work -----------------------------------------------------------

    def _cell_anchor(self, shape: StepShape, decodes: int) -> Anchor:
        prefill_tokens = shape.tokens - decodes
        cell = (int(math.log(prefill_tokens, PREFILL_CELL_BASE) + LOG_ROUNDING),
                int(math.log(decodes + 1, DECODE_CELL_BASE) + LOG_ROUNDING))
        if cell not in self._cells:
            self._cells[cell] = self.simulate(shape.sequences, f"anchor: {prefill_tokens} prefill tokens "
                                              f"and {decodes} decodes")
        return self._cells[cell]


def _composition(sequences: Sequence[SequenceShape]) -> tuple[SequenceShape, ...]:
    """A step's sequences in a canonical order (the step does not depend on their order)."""
    return tuple(sorted(sequences, key=lambda s: (s.new_tokens, s.context_before, s.emits_token)))


def _between(x: int, low: int, high: int, a: Anchor, b: Anchor) -> list[tuple[float, Anchor]]:
    """Linear interpolation weights of x between anchors a (at low) and b (at high)."""
    if high == low or x == low:
        return [(1.0, a)]
    if x == high:
        return [(1.0, b)]
    w = (x - low) / (high - low)
    return [(1.0 - w, a), (w, b)]


@dataclass(frozen=True)
class CheckSample:
    iteration: int
    label: str
    predicted_s: float
    simulated_s: float
    predicted_j: float
    simulated_j: float

    @property
    def error(self) -> float:
        return abs(self.predicted_s / self.simulated_s - 1)

    @property
    def energy_error(self) -> float:
        return abs(self.predicted_j / self.simulated_j - 1) if self.simulated_j else 0.0


def check_indices(candidates: Sequence[int], samples: int) -> list[int]:
    """`samples` iterations spread evenly over the candidates (the first and, for two or more, the last)."""
    if samples <= 0 or not candidates:
        return []
    if len(candidates) <= samples:
        return list(candidates)
    last = len(candidates) - 1
    return sorted({candidates[round(i * last / max(1, samples - 1))] for i in range(samples)})
