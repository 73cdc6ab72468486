"""Unit conversions. Engine time is integer picoseconds; everything else converts at the edges."""

from __future__ import annotations

PS_PER_S = 10**12
PS_PER_NS = 10**3
MS_PER_S = 10**3
BITS_PER_BYTE = 8


def ns_to_ps(value_ns: float) -> int:
    """Round a nanosecond timing parameter to whole picoseconds."""
    return round(value_ns * PS_PER_NS)


def cycles_to_ps(cycles: int, freq_hz: int) -> int:
    """Duration of `cycles` clock cycles at `freq_hz`, rounded up to whole picoseconds."""
    return -(-cycles * PS_PER_S // freq_hz)


def ps_to_s(time_ps: int) -> float:
    return time_ps / PS_PER_S


def ps_to_cycles(time_ps: int, freq_hz: int) -> float:
    return time_ps * freq_hz / PS_PER_S


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)
