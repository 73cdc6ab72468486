"""DRAM timing model: achieved bandwidth emerges from row hits, bank parallelism and refresh."""

from __future__ import annotations

import random

import pytest

from mixpe_sim.config import load_hardware
from mixpe_sim.config.models import DramMemoryConfig
from mixpe_sim.hardware.memory import DramMemory, FlatMemory
from mixpe_sim.units import PS_PER_S


def ddr4() -> DramMemoryConfig:
    cfg = load_hardware("mixpe-w4a16", "ddr4-3200").memory
    assert isinstance(cfg, DramMemoryConfig)
    return cfg


def stream_efficiency(cfg: DramMemoryConfig, request_bytes: int, total_bytes: int) -> tuple[float, float]:
    """A DMA streaming sequentially, issuing each request when the previous one completes."""
    memory = DramMemory(cfg)
    now = 0
    for addr in range(0, total_bytes, request_bytes):
        now = memory.access(now, addr, request_bytes, is_write=False)
    c = memory.counters
    return total_bytes / (now / PS_PER_S) / cfg.peak_bw_bytes_per_s, c.row_hits / (c.row_hits + c.row_misses)


def random_efficiency(cfg: DramMemoryConfig, count: int, size: int = 64) -> tuple[float, float]:
    """Many independent small requests in flight at once (best case for bank parallelism)."""
    memory = DramMemory(cfg)
    rng = random.Random(7)
    finish = 0
    for _ in range(count):
        addr = rng.randrange(0, 1 << 32) // size * size
        finish = max(finish, memory.access(0, addr, size, is_write=False))
    c = memory.counters
    return count * size / (finish / PS_PER_S) / cfg.peak_bw_bytes_per_s, c.row_hits / (c.row_hits + c.row_misses)


def test_sequential_stream_reaches_70_to_100_percent_of_peak() -> None:
    efficiency, hit_rate = stream_efficiency(ddr4(), 64 * 1024, 64 << 20)
    assert 0.70 <= efficiency <= 1.0
    assert hit_rate > 0.95


def test_random_small_accesses_are_slower_and_miss_rows() -> None:
    cfg = ddr4()
    sequential, seq_hits = stream_efficiency(cfg, 64 * 1024, 16 << 20)
    scattered, rnd_hits = random_efficiency(cfg, 20000)
    assert scattered < 0.5 * sequential
    assert rnd_hits < 0.1 < seq_hits


def test_refresh_costs_about_trfc_over_trefi() -> None:
    cfg = ddr4()
    no_refresh = cfg.model_copy(update={"timing": cfg.timing.model_copy(update={"trfc_ns": 0.0})})
    with_refresh, _ = stream_efficiency(cfg, 64 * 1024, 64 << 20)
    without, _ = stream_efficiency(no_refresh, 64 * 1024, 64 << 20)
    loss = 1 - with_refresh / without
    expected = cfg.timing.trfc_ns / cfg.timing.trefi_ns
    assert expected * 0.5 < loss < expected * 2


def test_closed_page_loses_row_hits_between_small_sequential_requests() -> None:
    cfg = ddr4()
    closed = cfg.model_copy(update={"page_policy": "closed"})
    open_eff, open_hits = stream_efficiency(cfg, 512, 4 << 20)
    closed_eff, closed_hits = stream_efficiency(closed, 512, 4 << 20)
    assert closed_hits < open_hits
    assert closed_eff < open_eff


def test_channel_split_conserves_bytes() -> None:
    memory = DramMemory(ddr4())
    for addr, size in ((0, 1), (100, 5000), (255, 2), (12345, 777777)):
        ranges = memory.channel_ranges(addr, size)
        assert sum(hi - lo for _, lo, hi in ranges) == size


def test_flat_memory_is_bandwidth_plus_latency() -> None:
    cfg = load_hardware().memory
    memory = FlatMemory(cfg)  # type: ignore[arg-type]
    finish = memory.access(0, 0, 64_000, is_write=False)
    assert finish == 1_000_000 + round(cfg.latency_ns * 1000)  # 64 kB at 64 GB/s = 1 us


@pytest.mark.parametrize("policy", ["open", "closed"])
def test_dram_timing_is_deterministic(policy: str) -> None:
    cfg = ddr4().model_copy(update={"page_policy": policy})
    assert stream_efficiency(cfg, 4096, 1 << 20) == stream_efficiency(cfg, 4096, 1 << 20)
