"""SIGTERM and SIGHUP end a command the way Ctrl-C does: as KeyboardInterrupt, so every cleanup path
(temp files of a trace, a sweep's worker pool, the summary of finished points) runs for all three."""

from __future__ import annotations

import signal
import threading
from types import FrameType

TERMINATION_SIGNALS = ("SIGTERM", "SIGHUP")


def _raise_interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"received {signal.Signals(signum).name}")


def interrupt_on_termination() -> None:
    """Install the handlers (main thread only; a no-op elsewhere, e.g. inside a library caller's thread)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for name in TERMINATION_SIGNALS:
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _raise_interrupt)
