"""`--trace`: one sink that streams trace.json and integrates the timeline, written together on close.

Counter tracks in the trace come from the timeline windows (DRAM and DMA bandwidth, buffer occupancy,
active PEs), so integrating a bandwidth counter over time gives back exactly the bytes moved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mixpe_sim.report.files import csv_text
from mixpe_sim.report.output import write_atomic
from mixpe_sim.trace.chrome import ChromeTraceWriter, TraceLevel
from mixpe_sim.trace.sink import TeeSink
from mixpe_sim.trace.timeline import TimelineRecorder

TRACE_FILE = "trace.json"
TIMELINE_FILE = "timeline.csv"


class TraceRecording(TeeSink):
    def __init__(self, out_dir: Path, level: TraceLevel, pe_count: int, hardware_sha256: str = "") -> None:
        self.out_dir = out_dir
        self.timeline = TimelineRecorder(pe_count)
        self.writer = ChromeTraceWriter(out_dir / TRACE_FILE, level)
        if hardware_sha256:  # which hardware configuration the trace is of (trace.json "otherData")
            self.writer.other_data["hardware_sha256"] = hardware_sha256
        super().__init__(self.writer, self.timeline)

    def span(self, component: str, lane: str, name: str, start_ps: int, end_ps: int,
             args: dict[str, Any] | None = None) -> None:
        """Both sinks, without the general fan-out loop (one call per tile and per transfer)."""
        self.writer.span(component, lane, name, start_ps, end_ps, args)
        self.timeline.span(component, lane, name, start_ps, end_ps, args)

    def counter(self, component: str, name: str, time_ps: int, value: float) -> None:
        """The timeline only: the writer streams no raw counters (ChromeTraceWriter.counter), it gets
        the windowed tracks on close. One call per buffer event."""
        self.timeline.counter(component, name, time_ps, value)

    def close(self) -> None:
        self.timeline.close()
        write_counter_tracks(self.writer, self.timeline)
        self.writer.close()
        write_atomic(self.out_dir / TIMELINE_FILE, csv_text(self.timeline.rows()))

    def abort(self) -> None:
        self.writer.abort()


def write_counter_tracks(writer: ChromeTraceWriter, timeline: TimelineRecorder) -> None:
    """One counter value per window (a step function), and zero after the end of the run."""
    windows = timeline.windows()
    tracks = []
    for key in sorted(timeline.series):
        if key.startswith("bytes."):
            tracks.append((key, key[6:], "bandwidth", "GB/s", 1e3))  # bytes per ps -> GB/s
        elif key == "active_pes":
            tracks.append((key, "pe_array", "active PEs", "PEs", 1.0))
        elif key.startswith("buffer."):
            component, name = key.rsplit(".", 1)
            tracks.append((key, component, name, "bytes", 1.0))
    for key, component, name, unit, scale in tracks:
        for index, (start, end) in enumerate(windows):
            writer.write_counter(component, name, start, {unit: timeline.value(key, index) / (end - start) * scale})
        if windows:
            writer.write_counter(component, name, windows[-1][1], {unit: 0.0})
