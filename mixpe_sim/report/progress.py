"""Progress bars for long runs and sweeps: tqdm (the `progress` extra) on a terminal or in Jupyter,
with an estimate of the time left; silent without tqdm, when stderr is not a terminal (CI, pipes,
--json) or with --quiet."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def _shown(enabled: bool) -> bool:
    return enabled and (sys.stderr.isatty() or "ipykernel" in sys.modules)


def _tqdm(**kwargs: Any) -> Any | None:
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(file=sys.stderr, leave=False, dynamic_ncols=True, **kwargs)


@contextmanager
def progress_bar(enabled: bool, desc: str, total: int | None = None) -> Iterator[Callable[[str], None]]:
    """A callable `report(label)`: one step done, now working on `label`."""
    bar = _tqdm(desc=desc, total=total) if _shown(enabled) else None
    if bar is None:
        yield lambda _label: None
        return

    def report(label: str) -> None:
        bar.set_postfix_str(label, refresh=False)
        bar.update(1)

    try:
        yield report
    finally:
        bar.close()


@contextmanager
def sweep_progress(enabled: bool) -> Iterator[Callable[[int, int, int, int], None]]:
    """A callable `report(finished, failed, remaining, total)` for a sweep."""
    bar = _tqdm(desc="sweep", unit="point") if _shown(enabled) else None
    if bar is None:
        yield lambda *_counts: None
        return

    def report(finished: int, failed: int, remaining: int, total: int) -> None:
        bar.total = total
        bar.n = finished
        bar.set_postfix(failed=failed, remaining=remaining, refresh=False)
        bar.refresh()

    try:
        yield report
    finally:
        bar.close()
