"""Observation: every component reports spans, counters and instants through one TraceSink."""

from mixpe_sim.trace.sink import NULL_SINK, NullSink, TraceSink

__all__ = ["NULL_SINK", "NullSink", "TraceSink"]
