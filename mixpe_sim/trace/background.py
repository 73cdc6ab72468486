"""Trace text made beside the simulation: a formatting process, forked when the recording starts
(Linux), turns each chunk of recorded columns into trace lines while the simulation goes on.

The recording writes each chunk's columns as plain values to a file beside the trace (marshal: a few
hundred nanoseconds a record) and names it on a pipe; the formatter appends the chunk's lines to the
trace's temporary file, which the recording leaves alone until the formatter is done. Forked before
the simulation has built anything, the formatter shares no pages the simulation writes, and no
transfer blocks the simulation. If the formatter fails, the recording cuts its lines off and formats
the chunks itself; where fork is unavailable, or when asked, it formats each chunk as it comes. The
text is the same either way (ChromeTraceWriter.format_columns; tests/test_trace_recording.py).
"""

from __future__ import annotations

import contextlib
import gc
import marshal
import os
import pickle
import signal
import sys
from pathlib import Path
from typing import Any

from mixpe_sim.trace.chrome import ChromeTraceWriter, ColumnsData

FORK_AVAILABLE = hasattr(os, "fork") and sys.platform.startswith("linux")
_MARSHAL, _PICKLE = b"m", b"p"  # how a chunk file is encoded (pickle: argument values marshal cannot write)
_END = b"\n"  # an empty line on the pipe: no more chunks


class ChunkFormatter:
    def __init__(self, writer: ChromeTraceWriter, background: bool = True) -> None:
        self.writer = writer
        self._stem = f".{writer.path.name}.{os.getpid()}"
        self._chunks: list[tuple[Path, int]] = []  # chunk files and their record counts, in order
        self._pid = 0
        self._failed = False
        self._handed_over_at = 0  # where the trace file ended when the formatter took it
        self._pipe = -1
        if background and FORK_AVAILABLE:
            self._start()

    def _start(self) -> None:
        trace_file, follows, self._handed_over_at = self.writer.hand_over()
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the formatter: never returns
            os.close(write_end)
            _serve(self.writer, read_end, trace_file, follows)
        os.close(read_end)
        self._pid, self._pipe = pid, write_end

    def submit(self, order: list[int], lanes: list[ColumnsData]) -> None:
        """Format these records (handed over: the caller records on into new columns)."""
        if not order:
            return
        if not self._pid:
            self.writer.write_formatted(self.writer.format_columns(order, lanes), len(order))
            return
        path = self.writer.path.with_name(f"{self._stem}.{len(self._chunks)}.chunk")
        with open(path, "wb") as out:
            out.write(_encode((order, lanes)))
        self._chunks.append((path, len(order)))
        if not self._failed:
            try:
                os.write(self._pipe, os.fsencode(path) + b"\n")
            except OSError:  # the formatter is gone: its chunks are formatted here on close
                self._failed = True

    def finish(self) -> None:
        """Every chunk's lines into the trace, in order."""
        if not self._pid:
            return
        if not self._failed:
            with contextlib.suppress(OSError):
                os.write(self._pipe, _END)
        os.close(self._pipe)
        _, status = os.waitpid(self._pid, 0)
        self._pid = 0
        if not self._failed and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            self.writer.take_back(sum(count for _, count in self._chunks))
        else:  # the formatter failed (killed, disk full): the same lines, made here
            self.writer.cut_back(self._handed_over_at)
            self.writer.take_back(0)
            for path, count in self._chunks:
                order, lanes = _decode(path.read_bytes())
                self.writer.write_formatted(self.writer.format_columns(order, lanes), count)
        self._remove_files()

    def abort(self) -> None:
        """Stop the formatter and remove its files."""
        if self._pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGKILL)
            os.waitpid(self._pid, 0)
            os.close(self._pipe)
            self._pid = 0
        self._remove_files()

    def _remove_files(self) -> None:
        for path, _ in self._chunks:
            path.unlink(missing_ok=True)
        self._chunks.clear()


def _encode(chunk: tuple[list[int], list[ColumnsData]]) -> bytes:
    try:
        return _MARSHAL + marshal.dumps(chunk)
    except ValueError:  # an argument value of a type marshal does not know
        return _PICKLE + pickle.dumps(chunk, protocol=pickle.HIGHEST_PROTOCOL)


def _decode(data: bytes) -> Any:
    return marshal.loads(data[1:]) if data[:1] == _MARSHAL else pickle.loads(data[1:])


def _serve(writer: ChromeTraceWriter, pipe: int, trace_file: str, follows: bool) -> None:
    """The formatter's life: each named chunk's lines appended to `trace_file`, until the empty line.
    Exits 0 when all were written; 1 on any failure or if the recording went away without finishing."""
    status = 1
    try:
        gc.disable()  # nothing cyclic to collect; a collection would touch every inherited page
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the recording's to handle (it aborts us)
        with os.fdopen(pipe, "rb") as names, open(trace_file, "a") as text:
            first = not follows
            for line in names:
                if line == _END:
                    status = 0
                    break
                order, lanes = _decode(Path(os.fsdecode(line[:-1])).read_bytes())
                text.write(("" if first else ",\n") + writer.format_columns(order, lanes))
                first = False
    finally:
        os._exit(status)
