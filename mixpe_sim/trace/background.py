"""Trace text made beside the simulation: a formatting process, forked when the recording starts
(Linux), turns each chunk of recorded words into trace lines while the simulation goes on.

The recording writes each chunk (trace/records.py: its words as one bytes object, with the lanes,
names and non-number values first used in it) to a file beside the trace and names it on a pipe; the
formatter appends the chunk's lines to the trace's temporary file, which the recording leaves alone
until the formatter is done, and on the last name writes the sub-lanes it made for the recording to
name. Forked before the simulation has built anything, the formatter shares no pages the simulation
writes, and no transfer blocks the simulation. If the formatter fails, the recording cuts its lines
off and formats the chunks itself; where fork is unavailable, or when asked, it formats each chunk as
it comes. The text is the same either way (records.ChunkText; tests/test_trace_recording.py).
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

from mixpe_sim.trace.chrome import ChromeTraceWriter
from mixpe_sim.trace.records import Chunk, ChunkText

FORK_AVAILABLE = hasattr(os, "fork") and sys.platform.startswith("linux")
_MARSHAL, _PICKLE = b"m", b"p"  # how a chunk file is encoded (pickle: argument values marshal cannot write)
_END = b"\n"  # an empty line on the pipe: no more chunks
_LENGTH_BYTES = 8  # the length of a chunk file's tables, after its codec byte


class ChunkFormatter:
    def __init__(self, writer: ChromeTraceWriter, background: bool = True) -> None:
        self.writer = writer
        self.text = ChunkText(writer)
        self._stem = f".{writer.path.name}.{os.getpid()}"
        self._tids_file = writer.path.with_name(f"{self._stem}.tids")  # the formatter's sub-lanes, at its end
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
            _serve(self.text, read_end, trace_file, follows, self._tids_file)
        os.close(read_end)
        self._pid, self._pipe = pid, write_end

    def submit(self, chunk: Chunk, records: int) -> None:
        """Format these records (handed over: the caller records on into a new chunk)."""
        if not self._pid:
            self.writer.write_formatted(self.text.lines(chunk), records)
            return
        path = self.writer.path.with_name(f"{self._stem}.{len(self._chunks)}.chunk")
        head, words = _encode(chunk)
        with open(path, "wb") as out:
            out.write(head)
            out.write(words)
        self._chunks.append((path, records))
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
            self.writer.adopt_tids(marshal.loads(self._tids_file.read_bytes()))
            self.writer.take_back(sum(count for _, count in self._chunks))
        else:  # the formatter failed (killed, disk full): the same lines, made here
            self.writer.cut_back(self._handed_over_at)
            self.writer.take_back(0)
            text = ChunkText(self.writer)
            for path, count in self._chunks:
                self.writer.write_formatted(text.lines(_decode(path.read_bytes())), count)
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
        self._tids_file.unlink(missing_ok=True)


def _encode(chunk: Chunk) -> tuple[bytes, bytes]:
    """The chunk file's head (codec, length and the chunk's tables) and its words, written as they are."""
    new_lanes, new_names, extras, words = chunk
    tables = (new_lanes, new_names, extras)
    try:
        codec, encoded = _MARSHAL, marshal.dumps(tables)
    except ValueError:  # an argument value of a type marshal does not know
        codec, encoded = _PICKLE, pickle.dumps(tables, protocol=pickle.HIGHEST_PROTOCOL)
    return codec + len(encoded).to_bytes(_LENGTH_BYTES, "little") + encoded, words


def _decode(data: bytes) -> Chunk:
    length = int.from_bytes(data[1:1 + _LENGTH_BYTES], "little")
    tables = data[1 + _LENGTH_BYTES:1 + _LENGTH_BYTES + length]
    new_lanes, new_names, extras = marshal.loads(tables) if data[:1] == _MARSHAL else pickle.loads(tables)
    return new_lanes, new_names, extras, data[1 + _LENGTH_BYTES + length:]


def _serve(text: ChunkText, pipe: int, trace_file: str, follows: bool, tids_file: Path) -> None:
    """The formatter's life: each named chunk's lines appended to `trace_file`, until the empty line,
    then the sub-lanes it made into `tids_file`. Exits 0 when all were written; 1 on any failure or if
    the recording went away without finishing."""
    status = 1
    try:
        gc.disable()  # nothing cyclic to collect; a collection would touch every inherited page
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the recording's to handle (it aborts us)
        with os.fdopen(pipe, "rb") as names, open(trace_file, "a") as out:
            first = not follows
            for line in names:
                if line == _END:
                    out.flush()
                    tids_file.write_bytes(marshal.dumps(text.writer.tid_table()))
                    status = 0
                    break
                chunk = _decode(Path(os.fsdecode(line[:-1])).read_bytes())
                out.write(("" if first else ",\n") + text.lines(chunk))
                first = False
    finally:
        os._exit(status)
