"""Frozen, schema-checked configuration objects. Every key carries its unit in its name.

Validation only: these classes check values and cross-field constraints, they do no work.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, model_validator

# Generic value rules shared by every section (issue 17): YAML `true` is not the integer 1, an integer
# written as `5e8` (YAML 1.1 reads it as text) is accepted when it is a whole number, floats are finite
# and below FLOAT_MAX (so products of two config values cannot overflow to infinity), and integers stay
# below INT_MAX (exact in a float, so no silent rounding in bandwidth arithmetic).
FLOAT_MAX = 1e15
INT_MAX = 2**53


def _whole_number(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("expected a whole number, not true/false")
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value  # pydantic reports it as not an integer
        if number != number or number in (float("inf"), float("-inf")) or number != int(number):
            raise ValueError(f"expected a whole number, got '{value}'")
        return int(number)
    return value


def _real_number(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("expected a number, not true/false")
    if isinstance(value, str):
        try:
            value = float(value)  # YAML 1.1 reads 5e8 (no dot) as text
        except ValueError:
            return value  # pydantic reports it as not a number
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number (not .inf or .nan)")
    return value


_Int = Annotated[int, BeforeValidator(_whole_number), Field(le=INT_MAX)]
_Float = Annotated[float, BeforeValidator(_real_number), Field(allow_inf_nan=False, le=FLOAT_MAX, ge=-FLOAT_MAX)]
PositiveInt = Annotated[_Int, Field(gt=0)]
NonNegativeInt = Annotated[_Int, Field(ge=0)]
# Positive floats are rates, times and energies used as divisors: below 1e-9 (of pJ, ns, W, MT/s) nothing is
# physical and the derived times overflow (data_rate_mtps=1e-300 -> 8e305 ps per burst).
POSITIVE_FLOAT_MIN = 1e-9
PositiveFloat = Annotated[_Float, Field(ge=POSITIVE_FLOAT_MIN)]
NonNegativeFloat = Annotated[_Float, Field(ge=0)]
Fraction = Annotated[_Float, Field(ge=0, le=1)]
# A DRAM timing parameter in ns: engine time is whole picoseconds, so a timing must be at least 1 ps.
PositiveNs = Annotated[_Float, Field(ge=0.001)]
# bool fields: "no", 0 or "off" are not silently read as booleans.
Flag = StrictBool

PEKindName = Literal["mixpe", "fp16", "int8", "bitfusion", "ant", "olaccel"]
# weight GEMM names of a block, LLaMA (qkv_proj, o_proj, gate_up_proj, down_proj) and OPT (fc1, fc2)
LowPrecisionOp = Literal["qkv_proj", "o_proj", "gate_up_proj", "down_proj", "fc1", "fc2"]
BufferName = Literal["weight", "activation", "output", "scale"]


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- compute side


class ArrayConfig(Frozen):
    rows: PositiveInt
    cols: PositiveInt
    dataflow: Literal["output_stationary", "weight_stationary"] = "output_stationary"
    # Partial sums kept in the output buffer between K tiles (the paper's model uses 16 bit).
    psum_bits: PositiveInt = 16
    # Output-stationary only, an extension the paper does not have (priced, docs/modelling.md "K-split"):
    # when a tile has fewer rows than the array (decode, M = batch), idle row groups take slices of K and
    # a shared reduction unit of `k_split_reduce_lanes` adders sums their partial sums. False gives the
    # paper's strict formula, where M = 1 uses one array row.
    k_split_small_m: Flag = False
    k_split_reduce_lanes: PositiveInt = 32  # adds per cycle of the reduction unit (area only when K-split is on)


class PEConfig(Frozen):
    kind: PEKindName
    # Key into `energy.pe`: which per-PE-cycle energy row this PE uses.
    energy_class: str
    # Key into `area.pe_um2`: the silicon area of one PE of this design.
    area_class: str


class LowPrecisionMap(Frozen):
    """Mixed-precision baselines: some blocks' weight GEMMs run at lower precision.

    The chosen blocks are spread evenly over the model (block i is low when floor((i+1)f) > floor(i f)).
    """

    weight_bits: Literal[2, 4, 8]
    activation_bits: Literal[2, 4, 8, 16]
    block_fraction: Fraction
    # which weight GEMMs of a chosen block (qkv_proj, o_proj, gate_up_proj, down_proj, fc1, fc2);
    # empty means all of them
    ops: tuple[LowPrecisionOp, ...] = ()


class QuantConfig(Frozen):
    """How weights are stored in DRAM and which precision activations travel at."""

    weight_bits: Literal[2, 3, 4, 8, 16]
    activation_bits: Literal[4, 8, 16]
    group_size: PositiveInt = 128
    scale_bits: PositiveInt = 16
    # 0 means symmetric quantization (no zero point stored).
    zero_bits: NonNegativeInt = 16
    low_precision: LowPrecisionMap | None = None


class DequantConfig(Frozen):
    # per_group: scale/zero applied once per group after the integer group dot product (MixPE).
    # per_weight: every weight is dequantized before it enters the multiplier (FP16/INT8 baselines).
    # per_output: both operands quantized per channel/tensor; one rescale per finished output
    #   (BitFusion, ANT, OLAccel); weights then carry one scale/zero per output column.
    placement: Literal["per_group", "per_weight", "per_output"]
    lanes: PositiveInt  # dequant operations per core cycle
    latency_cycles: NonNegativeInt = 0  # pipeline depth paid once per tile


class VectorUnitConfig(Frozen):
    """Unit for element-wise and reduction ops (norms, softmax, RoPE, residual adds)."""

    lanes: PositiveInt = 64  # elements per core cycle


class BufferConfig(Frozen):
    capacity_bytes: PositiveInt
    double_buffered: Flag = True
    port_bytes_per_cycle: PositiveInt


class BuffersConfig(Frozen):
    weight: BufferConfig
    activation: BufferConfig
    output: BufferConfig
    # Optional separate SRAM for per-group scales/zeros; without it they live in the weight buffer.
    scale: BufferConfig | None = None


# ---------------------------------------------------------------- memory side


class MemoryEnergy(Frozen):
    """Flat energy per bit moved plus a background power (the paper's model; `flat` and `ideal`)."""

    read_pj_per_bit: NonNegativeFloat
    write_pj_per_bit: NonNegativeFloat
    background_power_w: NonNegativeFloat


class DramEnergy(Frozen):
    """Energy per DRAM command of one channel (DRAMsim3/DRAMPower style, from datasheet IDD x VDD or
    published per-access figures; each preset cites its source). Counted after the run."""

    act_pj: NonNegativeFloat  # one activate with its precharge: VDD (IDD0 tRC - IDD3N tRAS - IDD2N tRP)
    read_pj_per_burst: NonNegativeFloat  # array and periphery of one read burst: VDD (IDD4R - IDD3N) tBL
    write_pj_per_burst: NonNegativeFloat  # VDD (IDD4W - IDD3N) tBL
    io_pj_per_bit: NonNegativeFloat  # interface: DQ drivers, termination, PHY (and TSVs for HBM), per bit moved
    refresh_pj: NonNegativeFloat  # one all-bank refresh: VDD (IDD5B - IDD3N) tRFC
    refresh_pb_pj: NonNegativeFloat  # one per-bank refresh
    active_standby_mw: NonNegativeFloat  # VDD IDD3N: some bank open
    precharge_standby_mw: NonNegativeFloat  # VDD IDD2N: all banks closed


class DramTiming(Frozen):
    """JEDEC timing parameters in ns (datasheet values in clock cycles multiplied by tCK)."""

    tcl_ns: PositiveNs  # READ -> first data (CL / RL)
    tcwl_ns: PositiveNs  # WRITE -> first data (CWL / WL)
    trcd_ns: PositiveNs  # ACT -> column command
    trp_ns: PositiveNs  # PRE -> ACT
    tras_ns: PositiveNs  # ACT -> PRE minimum
    trc_ns: PositiveNs  # ACT -> ACT, same bank
    tccd_s_ns: PositiveNs  # column -> column, different bank groups
    tccd_l_ns: PositiveNs  # column -> column, same bank group
    trrd_s_ns: PositiveNs  # ACT -> ACT, different bank groups
    trrd_l_ns: PositiveNs  # ACT -> ACT, same bank group
    tfaw_ns: PositiveNs  # window holding at most four ACTs per channel
    twtr_s_ns: PositiveNs  # end of write data -> READ, different bank groups
    twtr_l_ns: PositiveNs  # end of write data -> READ, same bank group
    trtw_ns: PositiveNs  # READ -> WRITE (bus turnaround)
    trtp_ns: PositiveNs  # READ -> PRE
    twr_ns: PositiveNs  # end of write data -> PRE (write recovery)
    trfc_ns: PositiveNs  # all-bank refresh: channel blocked
    trefi_ns: PositiveNs  # all-bank refresh interval
    trfcpb_ns: PositiveNs  # per-bank refresh: one bank blocked
    trefipb_ns: PositiveNs  # interval between per-bank refresh commands of a channel

    @model_validator(mode="after")
    def _check_jedec_relations(self) -> DramTiming:
        # (smaller, larger, why): each pair is an ordering JEDEC timing tables always satisfy
        relations = (
            ("trcd_ns", "tras_ns", "a row stays open at least until its columns can be read"),
            ("tccd_s_ns", "tccd_l_ns", "the same bank group is never faster than another"),
            ("trrd_s_ns", "trrd_l_ns", "the same bank group is never faster than another"),
            ("twtr_s_ns", "twtr_l_ns", "the same bank group is never faster than another"),
        )
        for small, large, why in relations:
            if getattr(self, large) < getattr(self, small):
                raise ValueError(f"{large} ({getattr(self, large)}) must be >= {small} ({getattr(self, small)}): {why}")
        if self.trc_ns < self.tras_ns + self.trp_ns:
            raise ValueError(f"trc_ns ({self.trc_ns}) must be >= tras_ns + trp_ns ({self.tras_ns + self.trp_ns})")
        if self.tfaw_ns < 4 * self.trrd_s_ns:
            raise ValueError(f"tfaw_ns ({self.tfaw_ns}) must be >= 4 x trrd_s_ns ({4 * self.trrd_s_ns:g}): "
                             "four activates need at least that long anyway")
        if self.trfc_ns >= self.trefi_ns:
            raise ValueError(f"trefi_ns ({self.trefi_ns}) must exceed trfc_ns ({self.trfc_ns}): "
                             "refresh would never end")
        return self


DramMapping = Literal["row_bank_column_bankgroup", "row_bank_column", "row_column_bank"]


class DramMemoryConfig(Frozen):
    kind: Literal["dram"]
    name: str
    source: str = ""
    channels: PositiveInt  # independent command/data interfaces (DDR5 subchannels, HBM pseudo-channels)
    bank_groups: PositiveInt
    banks_per_group: PositiveInt
    row_bytes: PositiveInt  # row (page) size of one channel
    bus_width_bits: PositiveInt  # data bus width of one channel
    data_rate_mtps: PositiveFloat  # mega-transfers per second per pin
    burst_length: PositiveInt
    interleave_bytes: PositiveInt = 256  # consecutive bytes on one channel before the next
    # Inside a channel (docs/memory.md "Address mapping"): row_bank_column_bankgroup rotates bank groups
    # every burst (streams run at tCCD_S); row_bank_column keeps a row of one bank together (streams
    # are held to tCCD_L); row_column_bank rotates every bank every burst.
    mapping: DramMapping = "row_bank_column_bankgroup"
    page_policy: Literal["open", "closed"] = "open"
    # fcfs: transfers are served in issue order (busy-until arithmetic, fastest to simulate).
    # fr_fcfs: a controller per channel serves the oldest queued row hit first, else the oldest.
    scheduler: Literal["fcfs", "fr_fcfs"] = "fcfs"
    queue_depth: PositiveInt = 16  # transactions per channel the fr_fcfs scheduler may choose among
    # lockstep: the channels, striped by interleave_bytes, are timed as one representative channel
    # (a transfer's share of every channel is the same to within one granule); independent: every
    # channel timed on its own (exact, slower). docs/memory.md "Channels".
    channel_model: Literal["lockstep", "independent"] = "lockstep"
    refresh: Literal["all_bank", "per_bank"] = "all_bank"
    # Bytes the memory system holds (weights + KV cache + activations); the serving model's KV budget.
    capacity_bytes: PositiveInt
    timing: DramTiming
    energy: DramEnergy

    @model_validator(mode="after")
    def _check_geometry(self) -> DramMemoryConfig:
        if self.bus_width_bits % 8:
            raise ValueError("bus_width_bits must be a multiple of 8")
        burst_bytes = self.bus_width_bits * self.burst_length // 8
        if self.row_bytes % burst_bytes:
            raise ValueError(f"row_bytes must be a multiple of one burst ({burst_bytes} bytes)")
        if self.interleave_bytes % burst_bytes:
            raise ValueError(f"interleave_bytes must be a multiple of one burst ({burst_bytes} bytes)")
        if self.scheduler == "fr_fcfs" and self.channel_model == "lockstep":
            raise ValueError("scheduler fr_fcfs reorders each channel's queue on its own: it needs "
                             "channel_model: independent")
        burst_ps = round(self.burst_length * 1e6 / self.data_rate_mtps)  # compared as the engine times them
        if round(self.timing.tccd_s_ns * 1e3) < burst_ps:
            raise ValueError(f"timing.tccd_s_ns ({self.timing.tccd_s_ns}) is shorter than one burst on the bus "
                             f"({burst_ps / 1e3:g} ns = burst_length / data rate)")
        if self.timing.trfcpb_ns >= self.timing.trefi_ns:
            raise ValueError("timing.trfcpb_ns must be shorter than timing.trefi_ns")
        return self

    @property
    def banks_per_channel(self) -> int:
        return self.bank_groups * self.banks_per_group

    @property
    def burst_bytes(self) -> int:
        return self.bus_width_bits * self.burst_length // 8

    @property
    def peak_bw_bytes_per_s(self) -> float:
        return self.channels * self.bus_width_bits / 8 * self.data_rate_mtps * 1e6


class FlatMemoryConfig(Frozen):
    """Fixed bandwidth and latency, as in the MixPE authors' analytical model."""

    kind: Literal["flat"]
    name: str
    source: str = ""
    bw_bytes_per_s: PositiveInt
    latency_ns: NonNegativeFloat = 0.0
    # None: the paper's model states no capacity; treated as unbounded (said in results that use it).
    capacity_bytes: PositiveInt | None = None
    energy: MemoryEnergy

    @property
    def peak_bw_bytes_per_s(self) -> float:
        return float(self.bw_bytes_per_s)


class IdealMemoryConfig(Frozen):
    """Infinite bandwidth, zero latency: isolates the compute-bound limit."""

    kind: Literal["ideal"]
    name: str
    source: str = ""
    capacity_bytes: PositiveInt | None = None  # None: unbounded
    energy: MemoryEnergy

    @property
    def peak_bw_bytes_per_s(self) -> float:
        return float("inf")


MemoryConfig = Annotated[
    DramMemoryConfig | FlatMemoryConfig | IdealMemoryConfig, Field(discriminator="kind")
]


# ---------------------------------------------------------------- energy table


class PEEnergy(Frozen):
    leakage_pj_per_pe_cycle: NonNegativeFloat
    dynamic_pj_per_pe_cycle: NonNegativeFloat


class SramEnergy(Frozen):
    read_pj_per_bit: NonNegativeFloat
    write_pj_per_bit: NonNegativeFloat


class EnergyTable(Frozen):
    name: str
    source: str = ""
    pe: dict[str, PEEnergy]
    sram: dict[BufferName, SramEnergy]
    dequant_per_weight_pj_per_op: NonNegativeFloat
    dequant_per_group_pj_per_op: NonNegativeFloat
    vector_pj_per_element: NonNegativeFloat
    # one add of the K-split reduction unit: FP16 add (16-bit activations) or 32-bit integer add
    reduce_fp_pj_per_add: NonNegativeFloat
    reduce_int_pj_per_add: NonNegativeFloat

    @model_validator(mode="after")
    def _check_buffers(self) -> EnergyTable:
        missing = {"weight", "activation", "output"} - set(self.sram)
        if missing:
            raise ValueError(f"sram needs entries for {sorted(missing)}")
        return self


# ---------------------------------------------------------------- area table


class SramMacro(Frozen):
    """One SRAM macro of a buffer (CACTI-class figure): buffers are built from whole macros."""

    capacity_bytes: PositiveInt
    width_bits: PositiveInt  # bits read or written per cycle
    area_mm2: PositiveFloat


DequantLaneKind = Literal["per_weight_fp", "per_weight_int", "per_group", "per_output"]


class AreaTable(Frozen):
    """Silicon area per component at one process node; every figure is cited in docs/modelling.md."""

    name: str
    source: str = ""
    process_nm: PositiveInt
    pe_um2: dict[str, PositiveFloat]  # per PE area class
    dequant_lane_um2: dict[DequantLaneKind, PositiveFloat]
    vector_lane_um2: PositiveFloat
    fp_adder_um2: PositiveFloat  # K-split reduction adder, 16-bit activations
    int_adder_um2: PositiveFloat  # K-split reduction adder, integer activations
    sram_macro: dict[BufferName, SramMacro]

    @model_validator(mode="after")
    def _check_buffers(self) -> AreaTable:
        missing = {"weight", "activation", "output"} - set(self.sram_macro)
        if missing:
            raise ValueError(f"sram_macro needs entries for {sorted(missing)}")
        return self


# ---------------------------------------------------------------- hardware


class HardwareConfig(Frozen):
    name: str
    description: str = ""
    core_freq_hz: PositiveInt
    pe: PEConfig
    array: ArrayConfig
    quant: QuantConfig
    dequant: DequantConfig
    vector: VectorUnitConfig = VectorUnitConfig()
    buffers: BuffersConfig
    memory: MemoryConfig
    energy: EnergyTable
    area: AreaTable
    # How attention runs (docs/modelling.md "Attention"): "unfused" = QK^T, softmax and PV as three
    # ops with scores and probabilities through DRAM; "fused" = FlashAttention-style tiling over K/V
    # blocks with online softmax, scores on chip.
    attention: Literal["fused", "unfused"] = "unfused"

    def with_overrides(self, overrides: Mapping[str, Any]) -> HardwareConfig:
        """A copy with `{"key.path": value}` changed and validated again, like `--set` (pydantic's
        `model_copy(update=...)` would skip validation).

        >>> from mixpe_sim import load_hardware
        >>> load_hardware().with_overrides({"array.rows": 64}).array.rows
        64
        """
        from mixpe_sim.config.loader import apply_overrides

        return apply_overrides(self, list(overrides.items()))

    @model_validator(mode="after")
    def _check_cross_refs(self) -> HardwareConfig:
        if self.pe.energy_class not in self.energy.pe:
            raise ValueError(
                f"pe.energy_class '{self.pe.energy_class}' is not in energy.pe "
                f"(allowed: {', '.join(sorted(self.energy.pe))})"
            )
        if self.pe.area_class not in self.area.pe_um2:
            raise ValueError(
                f"pe.area_class '{self.pe.area_class}' is not in area.pe_um2 "
                f"(allowed: {', '.join(sorted(self.area.pe_um2))})"
            )
        if self.buffers.scale is not None and "scale" not in self.energy.sram:
            raise ValueError("buffers.scale is set but energy.sram has no 'scale' entry")
        if self.buffers.scale is not None and "scale" not in self.area.sram_macro:
            raise ValueError("buffers.scale is set but area.sram_macro has no 'scale' entry")
        return self
