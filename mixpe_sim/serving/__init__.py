"""Serving: request arrivals, iteration-level continuous batching with a paged KV cache, latency vs
load, each iteration timed by the discrete-event hardware model (docs/serving.md)."""
