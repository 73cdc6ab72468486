"""Where sweep points run: in this process, a local process pool, or a Dask distributed cluster.

Each executor takes the jobs and yields (index, row) as points finish, in completion order.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from mixpe_sim.errors import MixpeError
from mixpe_sim.sweeps.runner import run_point

Finished = Iterator[tuple[int, dict[str, Any]]]


def execute(jobs: Sequence[tuple[int, dict[str, Any]]], workers: int, scheduler: str | None) -> Finished:
    if scheduler:
        return _on_dask(jobs, scheduler)
    if workers == 1:
        return ((index, run_point(job)) for index, job in jobs)
    return _on_process_pool(jobs, workers)


def _on_process_pool(jobs: Sequence[tuple[int, dict[str, Any]]], workers: int) -> Finished:
    """A local pool whose workers ignore SIGINT (the parent decides) and exit when the parent dies.

    Leaving the generator early (Ctrl-C, SIGTERM, an error) terminates the workers at once instead of
    letting them run the queued points: `Pool.__exit__` calls terminate().
    """
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    with context.Pool(workers, initializer=_worker_init, initargs=(os.getpid(),)) as pool:
        yield from pool.imap_unordered(_run_indexed, jobs)


def _run_indexed(item: tuple[int, dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    index, job = item
    return index, run_point(job)


# How often a worker checks that its parent is alive (a SIGKILLed parent cannot clean up).
PARENT_CHECK_S = 0.5


def _worker_init(parent_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group; the parent stops us
    for name in ("SIGTERM", "SIGHUP"):  # the defaults (exit) even if the parent installed handlers
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()


def _exit_with_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_CHECK_S)
    os._exit(1)


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
