"""Action counters filled in by the components during a run; energy and reports read them after."""

from __future__ import annotations

from dataclasses import dataclass, field

# Where the PE array's time goes when it is not doing MACs.
STALL_CAUSES = (
    "weight_load",  # waiting for a weight (or KV) tile from DRAM
    "activation_load",  # waiting for an activation tile from DRAM
    "dependency",  # waiting for a producer GEMM's results to reach DRAM
    "vector",  # waiting for a vector op (norm, softmax, ...) to finish
    "output_writeback",  # output buffer full: previous results still being written back
    "dequant",  # dequant unit slower than the MACs of a tile
    "buffer_port",  # SRAM port bandwidth slower than the MACs of a tile
    "k_split_reduce",  # K-split reduction unit slower than the MACs of a tile
    "drain",  # after the last tile: final results still being written back
)


def _zero_stalls() -> dict[str, int]:
    return dict.fromkeys(STALL_CAUSES, 0)


@dataclass
class OpCounters:
    """Per-op actions on the compute units."""

    tiles: int = 0
    macs: int = 0
    compute_cycles: int = 0  # MAC cycles incl. fill/drain
    busy_ps: int = 0  # array (or vector unit) occupied by this op
    active_pe_cycles: float = 0.0  # PE-cycles doing useful MACs (dynamic energy)
    dequant_ops: int = 0
    reduce_ops: int = 0  # K-split partial-sum additions
    vector_elements: int = 0
    stall_ps: dict[str, int] = field(default_factory=_zero_stalls)
    start_ps: int = -1
    end_ps: int = 0

    def touch(self, start_ps: int, end_ps: int) -> None:
        if self.start_ps < 0:
            self.start_ps = start_ps
        self.end_ps = max(self.end_ps, end_ps)


@dataclass
class BufferCounters:
    bytes_read: int = 0
    bytes_written: int = 0
    peak_occupancy_bytes: int = 0
