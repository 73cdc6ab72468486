"""Where sweep points run: in this process, a local process pool, or a Dask distributed cluster.

Each executor takes the jobs and yields (index, row) as points finish, in completion order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from mixpe_sim.errors import MixpeError
from mixpe_sim.sweeps.runner import run_point
from mixpe_sim.workers import started

Finished = Iterator[tuple[int, dict[str, Any]]]


def execute(jobs: Sequence[tuple[int, dict[str, Any]]], workers: int, scheduler: str | None) -> Finished:
    if scheduler:
        return _on_dask(jobs, scheduler)
    if workers == 1:
        return ((index, run_point(job)) for index, job in jobs)
    return _on_process_pool(jobs, workers)


def _on_process_pool(jobs: Sequence[tuple[int, dict[str, Any]]], workers: int) -> Finished:
    """Local worker processes (mixpe_sim/workers.py: they ignore Ctrl-C and die with the parent;
    leaving the generator early terminates them)."""
    with started(_run_indexed, jobs, workers, ordered=False) as finished:
        yield from finished


def _run_indexed(item: tuple[int, dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    index, job = item
    return index, run_point(job)


def _on_dask(jobs: Sequence[tuple[int, dict[str, Any]]], address: str) -> Finished:
    try:
        from distributed import Client
        from distributed import as_completed as dask_as_completed
    except ImportError:
        raise MixpeError("--scheduler needs Dask: pip install 'mixpe-sim[dask]'") from None
    try:
        client = Client(address, timeout=30)
    except OSError as exc:
        raise MixpeError(f"--scheduler: cannot reach a Dask scheduler at '{address}' ({exc})") from None
    with client:
        futures = client.map(run_point, [job for _, job in jobs], pure=False)
        indices = {future.key: index for future, (index, _) in zip(futures, jobs, strict=True)}
        for future in dask_as_completed(futures):
            yield indices[future.key], future.result()
