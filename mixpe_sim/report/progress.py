"""Progress on long runs: one status line on stderr, rewritten in place (no extra dependency).

Silent when stderr is not a terminal (CI, pipes, --json consumers).
"""

from __future__ import annotations

import sys
from collections.abc import Callable


def progress_reporter(enabled: bool) -> Callable[[str], None]:
    if not enabled or not sys.stderr.isatty():
        return lambda _label: None

    def report(label: str) -> None:
        sys.stderr.write(f"\r\x1b[2K  {label}")
        sys.stderr.flush()

    return report


def finish_progress(enabled: bool) -> None:
    if enabled and sys.stderr.isatty():
        sys.stderr.write("\r\x1b[2K")
        sys.stderr.flush()
