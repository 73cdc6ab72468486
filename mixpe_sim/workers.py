"""Local worker processes for independent simulations (sweep points, the steps of a request).

Workers ignore SIGINT (Ctrl-C reaches the whole process group; the parent decides), take the default
action on SIGTERM/SIGHUP, and exit when the parent dies (a SIGKILLed parent cannot clean up).
Leaving the `started` block terminates the pool at once (`Pool.__exit__` calls terminate()).
Workers are forked where the platform allows it: they start with the parent's imports and caches.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

Job = TypeVar("Job")
Out = TypeVar("Out")

# How often a worker checks that its parent is alive.
PARENT_CHECK_S = 0.5


@contextmanager
def started(function: Callable[[Job], Out], jobs: Iterable[Job], workers: int,
            ordered: bool = True) -> Iterator[Iterator[Out]]:
    """`with started(f, jobs, n) as results:` the pool starts working at once; `results` yields
    f(job) in job order (or as they finish). Leaving the block terminates the workers."""
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    with context.Pool(workers, initializer=_worker_init, initargs=(os.getpid(),)) as pool:
        yield (pool.imap if ordered else pool.imap_unordered)(function, jobs)


def _worker_init(parent_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in ("SIGTERM", "SIGHUP"):  # the defaults (exit) even if the parent installed handlers
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()


def _exit_with_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_CHECK_S)
    os._exit(1)
