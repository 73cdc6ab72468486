"""DMA engines: stream tiles from DRAM into a buffer in program order, and write results back.

A load DMA issues transfers as long as its buffer has room and the data it reads has been written,
so several transfers can be in flight (their overlap is decided by the memory model); a tile becomes
usable when its last byte arrives. The load DMA is not a process: it acts when something it waits
for happens (buffer space freed, a producer op finished), at that moment, so a hand-off costs no
event of its own. Write-backs are booked on the memory the moment a result is ready.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from mixpe_sim.hardware.buffers import Buffer
from mixpe_sim.hardware.clock import ArrivalEvent, Clock
from mixpe_sim.hardware.dram_scheduler import MemoryModel
from mixpe_sim.hardware.memory import BusyUntilMemory
from mixpe_sim.hardware.primitives import Arrivals
from mixpe_sim.trace.sink import TraceSink
from mixpe_sim.workload.program import NO_OP, TokenTable


class OpCompletion:
    """Counts outstanding stores per op: an op is done when its last result is written back."""

    def __init__(self, stores_per_op: Sequence[int]) -> None:
        self.pending = list(stores_per_op)
        self.done = [count == 0 for count in self.pending]
        self._listeners: dict[int, list[Callable[[], None]]] = {}

    def when_done(self, op: int, callback: Callable[[], None]) -> None:
        self._listeners.setdefault(op, []).append(callback)

    def store_finished(self, op: int) -> None:
        self.pending[op] -= 1
        if self.pending[op] == 0:
            self.done[op] = True
            for callback in self._listeners.pop(op, ()):
                callback()


class LoadDMA:
    def __init__(self, env: Clock, name: str, memory: MemoryModel, buffer: Buffer,
                 scale_buffer: Buffer, tokens: TokenTable, order: Sequence[int], arrivals: Arrivals,
                 completion: OpCompletion, trace: TraceSink) -> None:
        self.env, self.name, self.memory = env, name, memory
        self.buffer, self.scale_buffer = buffer, scale_buffer
        self.arrivals, self.completion = arrivals, completion
        self._addr, self._after_op = tokens.dram_addr, tokens.after_op
        self._payload, self._scales = tokens.payload_bytes, tokens.scale_bytes
        self._order, self._count = order, len(order)
        self._next = 0  # index into order of the next token to load
        self._request = memory.request
        # the FCFS memories (ideal, flat, DRAM) answer every request at once: called through their
        # base natively when compiled (through the protocol's bound method it is a generic call with
        # its six arguments boxed)
        self._busy_until = memory if isinstance(memory, BusyUntilMemory) else None
        self._holding_payload = False  # separate scale SRAM: payload space held while scale space frees
        self._shared_scales = scale_buffer is buffer
        self._trace = trace
        self._load_lane = trace.lane(f"dma.{name}", "load", ("token", "bytes", "addr"))
        # traced runs: each token's issue time (its bytes and address are the token's)
        self._issued_ps = [0] * len(tokens.payload_bytes) if trace.enabled else []
        self._deliver: Callable[[Any, int], None] = self._arrived_traced if trace.enabled else arrivals.deliver

    @property
    def finished(self) -> bool:
        return self._next == len(self._order)

    def pump(self) -> None:
        """Issue every transfer that can start now, in program order; stop at the first that cannot.

        The engine's hottest code with the array's tile loop: locals on purpose.
        """
        order, index, count = self._order, self._next, self._count
        addrs, payloads, scales_of, after_ops = self._addr, self._payload, self._scales, self._after_op
        done, deliver, request, arrivals = self.completion.done, self._deliver, self._request, self.arrivals
        busy_until = self._busy_until
        buffer, shared, traced = self.buffer, self._shared_scales, self._trace.enabled
        now = self.env._now
        while index < count:
            token_id = order[index]
            after_op = after_ops[token_id]
            if after_op != NO_OP and not done[after_op]:
                self.completion.when_done(after_op, self.pump)
                break
            payload, scales = payloads[token_id], scales_of[token_id]
            if shared:
                if buffer.free_bytes < payload + scales or not buffer.try_reserve(payload + scales):
                    buffer.wake_on_release = self.pump
                    break
            elif not self._reserve_split(payload, scales):
                break
            addr = addrs[token_id]
            if traced:
                self._issued_ps[token_id] = now
            ready: int | None
            if busy_until is not None:
                ready = busy_until.request(now, addr, payload + scales, False)
            else:
                ready = request(now, addr, payload + scales, False, deliver, token_id)
            if ready is not None:  # known at once: a native call when compiled, not the callback's
                if traced:
                    self._arrived_traced(token_id, ready)
                else:
                    arrivals.deliver(token_id, ready)
            index += 1
        self._next = index

    def _reserve_split(self, payload: int, scales: int) -> bool:
        """Separate scale SRAM: hold the payload's space while waiting for the scales' space."""
        if not self._holding_payload:
            if not self.buffer.try_reserve(payload):
                self.buffer.wake_on_release = self.pump
                return False
            self._holding_payload = True
        if scales and not self.scale_buffer.try_reserve(scales):
            self.scale_buffer.wake_on_release = self.pump
            return False
        self._holding_payload = False
        return True

    def _arrived_traced(self, token_id: int, ready_ps: int) -> None:
        nbytes = self._payload[token_id] + self._scales[token_id]
        self._trace.slice(self._load_lane, "load", self._issued_ps[token_id], ready_ps, token_id, nbytes,
                          self._addr[token_id])
        self.arrivals.deliver(token_id, ready_ps)


class StoreRequest(NamedTuple):
    op: int
    addr: int
    nbytes: int  # written to DRAM
    reserved_bytes: int  # output-buffer space freed once the write completes
    issued_ps: int


class StoreDMA:
    def __init__(self, env: Clock, memory: MemoryModel, buffer: Buffer,
                 completion: OpCompletion, trace: TraceSink) -> None:
        self.env, self.memory, self.buffer = env, memory, buffer
        self._completion = completion
        self._trace = trace
        self._store_lane = trace.lane("dma.store", "store", ("op", "bytes", "addr"))

    def submit(self, request: StoreRequest) -> None:
        """Book the write on the memory now; free the buffer space when its last byte is out."""
        if not request.nbytes:  # a result that stays on chip (fused attention): done at once
            self._complete(request)
            return
        finish = self.memory.request(request.issued_ps, request.addr, request.nbytes, True, self._written, request)
        if finish is not None:
            self._written(request, finish)
        self.buffer.counters.bytes_read += request.nbytes

    def _written(self, request: StoreRequest, finish_ps: int) -> None:
        done = ArrivalEvent(self.env)  # type: ignore[arg-type]  # the Clock is a simpy.Environment
        done.callbacks.append(lambda _event: self._complete(request))
        done.arm(finish_ps - self.env.now)

    def _complete(self, request: StoreRequest) -> None:
        if self._trace.enabled:
            self._trace.slice(self._store_lane, "store", request.issued_ps, self.env.now, request.op,
                              request.nbytes, request.addr)
        self.buffer.release(request.reserved_bytes)
        self._completion.store_finished(request.op)
