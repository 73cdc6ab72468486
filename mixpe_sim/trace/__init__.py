"""Observation: every component reports spans, counters and instants through one TraceSink;
chrome.py streams them to Perfetto JSON, timeline.py integrates them into windows."""

from mixpe_sim.trace.sink import NULL_SINK, NullSink, TraceSink

__all__ = ["NULL_SINK", "NullSink", "TraceSink"]
