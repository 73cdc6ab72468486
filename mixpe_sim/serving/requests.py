"""The requests a serving run sees: Poisson arrivals with fixed lengths, or lengths (and optionally
arrival times) from a CSV trace."""

from __future__ import annotations

import csv
import io
import math
import random
from dataclasses import dataclass
from pathlib import Path

from mixpe_sim.config.textfile import read_text
from mixpe_sim.errors import ConfigError

TRACE_COLUMNS = ("prompt_tokens", "output_tokens")  # required; `arrival_s` optional


@dataclass(frozen=True, slots=True)
class Request:
    request_id: int
    arrival_s: float
    prompt_tokens: int
    output_tokens: int  # including the first token, which the prefill produces


def poisson_arrivals(count: int, qps: float, seed: int) -> list[float]:
    """`count` arrival times of a Poisson process of rate `qps`, starting at the first inter-arrival gap."""
    rng = random.Random(seed)
    now, times = 0.0, []
    for _ in range(count):
        now += rng.expovariate(qps)
        times.append(now)
    return times


def fixed_requests(count: int, qps: float, seed: int, prompt: int, gen: int) -> list[Request]:
    return [Request(i, t, prompt, gen) for i, t in enumerate(poisson_arrivals(count, qps, seed))]


def trace_requests(path: Path, qps: float | None, seed: int, count: int | None) -> list[Request]:
    """Requests from a CSV of `prompt_tokens`, `output_tokens` and, optionally, `arrival_s` (sorted);
    without arrival times they arrive as a Poisson process at `qps`. `count` takes the first rows
    (cycling through the file when it has fewer)."""
    where = str(path)
    reader = csv.DictReader(io.StringIO(read_text(path, where)))
    columns = reader.fieldnames or []
    missing = [c for c in TRACE_COLUMNS if c not in columns]
    if missing:
        raise ConfigError(where, "columns", f"missing {', '.join(missing)} (needs prompt_tokens, output_tokens; "
                          f"arrival_s optional; found {', '.join(columns) or 'none'})")
    rows = []
    for number, row in enumerate(reader, start=2):  # row 1 is the header
        lengths = [_positive_int(row.get(c), where, number, c) for c in TRACE_COLUMNS]
        arrival = _arrival(row.get("arrival_s"), where, number) if "arrival_s" in columns else None
        if arrival is not None and rows and arrival < rows[-1][0]:
            raise ConfigError(where, f"row {number}: arrival_s", f"arrivals must be sorted ({arrival} after "
                              f"{rows[-1][0]})")
        rows.append((arrival, *lengths))
    if not rows:
        raise ConfigError(where, "", "no requests in the trace")
    wanted = count or len(rows)
    chosen = [rows[i % len(rows)] for i in range(wanted)]
    if "arrival_s" in columns:
        if qps is not None:
            raise ConfigError(where, "arrival_s", f"the trace has its own arrival times, so --qps {qps:g} would be "
                              "ignored (drop --qps, or use a trace without arrival_s)")
        if wanted > len(rows):
            raise ConfigError(where, "arrival_s", f"the trace has {len(rows)} timed requests; --requests "
                              f"{wanted} would need more")
        return [Request(i, a, p, g) for i, (a, p, g) in enumerate(chosen)]
    if qps is None:
        raise ConfigError(where, "arrival_s", "the trace has no arrival times: give --qps")
    times = poisson_arrivals(wanted, qps, seed)
    return [Request(i, t, p, g) for i, (t, (_, p, g)) in enumerate(zip(times, chosen, strict=True))]


def _positive_int(text: str | None, where: str, row: int, column: str) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise ConfigError(where, f"row {row}: {column}", f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise ConfigError(where, f"row {row}: {column}", f"must be positive, got {value}")
    return value


def _arrival(text: str | None, where: str, row: int) -> float:
    try:
        value = float(str(text).strip())
    except ValueError:
        raise ConfigError(where, f"row {row}: arrival_s", f"expected seconds, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError(where, f"row {row}: arrival_s", f"must be a finite time >= 0, got {text!r}")
    return value
