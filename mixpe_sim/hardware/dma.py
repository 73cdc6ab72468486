"""DMA engines: stream tiles from DRAM into a buffer in program order, and write results back.

A load DMA keeps issuing as long as its buffer has room, so several transfers can be in flight
(their overlap is decided by the memory model); a tile becomes usable when its last byte arrives.
Write-backs are booked on the memory the moment a result is ready (busy-until), so the store DMA
needs no process of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import NamedTuple

import simpy

from mixpe_sim.hardware.buffers import Buffer
from mixpe_sim.hardware.dram_scheduler import MemoryModel
from mixpe_sim.hardware.primitives import ArrivalEvent
from mixpe_sim.trace.sink import TraceSink
from mixpe_sim.workload.program import NO_OP, Token


class LoadDMA:
    def __init__(self, env: simpy.Environment, name: str, memory: MemoryModel, buffer: Buffer,
                 scale_buffer: Buffer, tokens: Sequence[Token], order: Sequence[int],
                 ready: Sequence[ArrivalEvent], op_done: Sequence[simpy.Event], trace: TraceSink) -> None:
        self.env, self.name, self.memory = env, name, memory
        self.buffer, self.scale_buffer = buffer, scale_buffer
        self.tokens, self.ready, self.op_done = tokens, ready, op_done
        self._trace = trace
        self.process = env.process(self._run(order))

    def _run(self, order: Sequence[int]) -> Generator[simpy.Event, None, None]:
        env, memory, trace = self.env, self.memory, self._trace
        buffer, scale_buffer = self.buffer, self.scale_buffer
        shared_scales = scale_buffer is buffer
        for token_id in order:
            token = self.tokens[token_id]
            if token.after_op != NO_OP:
                yield self.op_done[token.after_op]
            if shared_scales:
                yield from buffer.reserve(token.payload_bytes + token.scale_bytes)
            else:
                yield from buffer.reserve(token.payload_bytes)
                if token.scale_bytes:
                    yield from scale_buffer.reserve(token.scale_bytes)
            nbytes = token.payload_bytes + token.scale_bytes
            ready = self.ready[token_id]
            if trace.enabled:
                self._trace_on_arrival(ready, token_id, nbytes, token.dram_addr)
            memory.request(env.now, token.dram_addr, nbytes, False, ready)
            buffer.counters.bytes_written += token.payload_bytes
            scale_buffer.counters.bytes_written += token.scale_bytes

    def _trace_on_arrival(self, ready: ArrivalEvent, token_id: int, nbytes: int, addr: int) -> None:
        issued = self.env.now
        ready.callbacks.append(lambda _event: self._trace.span(
            f"dma.{self.name}", "load", "load", issued, self.env.now,
            {"token": token_id, "bytes": nbytes, "addr": addr}))


class StoreRequest(NamedTuple):
    op: int
    addr: int
    nbytes: int  # written to DRAM
    reserved_bytes: int  # output-buffer space freed once the write completes


class StoreDMA:
    def __init__(self, env: simpy.Environment, memory: MemoryModel, buffer: Buffer,
                 on_complete: Callable[[StoreRequest], None], trace: TraceSink) -> None:
        self.env, self.memory, self.buffer = env, memory, buffer
        self._on_complete = on_complete
        self._trace = trace

    def submit(self, request: StoreRequest) -> None:
        """Book the write on the memory now; free the buffer space when its last byte is out."""
        if not request.nbytes:  # a result that stays on chip (fused attention): done at once
            self._complete(request, self.env.now)
            return
        issued = self.env.now
        done = ArrivalEvent(self.env)
        done.callbacks.append(lambda _event: self._complete(request, issued))
        self.memory.request(issued, request.addr, request.nbytes, True, done)
        self.buffer.counters.bytes_read += request.nbytes

    def _complete(self, request: StoreRequest, issued_ps: int) -> None:
        if self._trace.enabled:
            self._trace.span("dma.store", "store", "store", issued_ps, self.env.now,
                             {"op": request.op, "bytes": request.nbytes, "addr": request.addr})
        self.buffer.release(request.reserved_bytes)
        self._on_complete(request)
