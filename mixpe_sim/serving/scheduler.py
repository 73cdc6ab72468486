"""Iteration-level scheduling (continuous batching) with a paged KV cache and preemption by recompute.

Each iteration the scheduler picks which sequences run and how many of their pending tokens:
  * `vllm` (vLLM v0's default scheduler): if requests are waiting and the first of them fits (batch
    slot, KV blocks for its whole prompt, the prefill token budget), the iteration prefills waiting
    requests in arrival order, nothing else; otherwise it decodes every running sequence.
  * `sarathi` (Sarathi-Serve, chunked prefill): every iteration has a budget of `chunk_tokens`; first
    each running decode gets its token, then unfinished prefills continue, then waiting requests
    start, each taking as much of the budget as is left (the prompt is split into chunks).
When a decode needs a new KV block and none is free, the newest running sequence is preempted (its
blocks freed, it goes back to the head of the queue and later recomputes its prompt and the tokens
it had generated), as vLLM does with recompute preemption.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from mixpe_sim.serving.kv import KvCache
from mixpe_sim.serving.requests import Request
from mixpe_sim.workload.shapes import SequenceShape

Policy = Literal["vllm", "sarathi"]
POLICIES: tuple[Policy, ...] = ("vllm", "sarathi")


@dataclass(eq=False)  # a sequence is itself: identity, so `in` and `remove` on the batch stay cheap
class Running:
    """A request's progress: `kv_tokens` are cached; `pending` must be processed before its next
    token comes out (the prompt at first, then the last generated token, or everything again after a
    preemption)."""

    request: Request
    pending: int
    kv_tokens: int = 0
    blocks: int = 0
    generated: int = 0
    first_scheduled_s: float | None = None
    first_token_s: float | None = None
    finished_s: float | None = None
    preemptions: int = 0

    @property
    def decoding(self) -> bool:
        return self.kv_tokens > 0 and self.pending == 1


@dataclass(frozen=True)
class Work:
    """What one sequence does in an iteration."""

    seq: Running
    tokens: int

    @property
    def emits(self) -> bool:
        return self.tokens == self.seq.pending

    @property
    def shape(self) -> SequenceShape:
        return SequenceShape(self.tokens, self.seq.kv_tokens, self.emits)


@dataclass
class Scheduler:
    policy: Policy
    kv: KvCache
    max_batch: int
    prefill_tokens: int  # vllm: prefill token budget per iteration; sarathi: tokens per iteration
    waiting: deque[Running] = field(default_factory=deque)
    running: list[Running] = field(default_factory=list)
    preemptions: int = 0

    def admit(self, request: Request) -> Running:
        seq = Running(request, pending=request.prompt_tokens)
        self.waiting.append(seq)
        return seq

    @property
    def idle(self) -> bool:
        return not self.waiting and not self.running

    def next_iteration(self, now_s: float) -> list[Work]:
        """The work of the iteration starting at `now_s` (its KV blocks allocated), in batch order."""
        work = (self._prefills_first() or self._decodes()) if self.policy == "vllm" else self._chunked()
        for item in work:
            if item.seq.first_scheduled_s is None:
                item.seq.first_scheduled_s = now_s
        return work

    def complete(self, work: list[Work], now_s: float) -> list[Running]:
        """Apply a finished iteration; returns the sequences that completed their request."""
        done = []
        for item in work:
            seq = item.seq
            seq.kv_tokens += item.tokens
            seq.pending -= item.tokens
            if seq.pending:
                continue
            seq.generated += 1
            if seq.first_token_s is None:
                seq.first_token_s = now_s
            if seq.generated >= seq.request.output_tokens:
                seq.finished_s = now_s
                self.kv.free(seq.blocks)
                seq.blocks = 0
                self.running.remove(seq)
                done.append(seq)
            else:
                seq.pending = 1
        return done

    # -- policies -------------------------------------------------------------------------------

    def _prefills_first(self) -> list[Work]:
        work: list[Work] = []
        budget = self.prefill_tokens
        while self.waiting and len(self.running) < self.max_batch:
            seq = self.waiting[0]
            # the first prefill always goes: a recomputed sequence may exceed the budget alone
            if work and seq.pending > budget:
                break
            if not self._reserve(seq, seq.pending):
                break
            self.running.append(self.waiting.popleft())
            work.append(Work(seq, seq.pending))
            budget -= seq.pending
        return work

    def _decodes(self) -> list[Work]:
        work = []
        for seq in list(self.running):
            if seq not in self.running:  # preempted to make room for an older sequence
                continue
            if self._reserve_or_preempt(seq, 1):
                work.append(Work(seq, 1))
        return work

    def _chunked(self) -> list[Work]:
        budget = self.prefill_tokens
        work: list[Work] = []
        for seq in list(self.running):
            if seq.decoding and seq in self.running and budget and self._reserve_or_preempt(seq, 1):
                work.append(Work(seq, 1))
                budget -= 1
        for seq in list(self.running):
            if not seq.decoding and seq in self.running and budget:
                tokens = min(seq.pending, budget)
                if self._reserve_or_preempt(seq, tokens):
                    work.append(Work(seq, tokens))
                    budget -= tokens
        while budget and self.waiting and len(self.running) < self.max_batch:
            seq = self.waiting[0]
            tokens = min(seq.pending, budget)
            if not self._reserve(seq, tokens):
                break
            self.running.append(self.waiting.popleft())
            work.append(Work(seq, tokens))
            budget -= tokens
        return work

    # -- KV blocks ------------------------------------------------------------------------------

    def _reserve(self, seq: Running, tokens: int) -> bool:
        """Allocate the blocks `tokens` more tokens of `seq` need, if they are free."""
        need = self.kv.blocks_for(seq.kv_tokens + tokens) - seq.blocks
        if need > 0 and not self.kv.can_grow(need):
            return False
        if need > 0:
            self.kv.grow(need)
            seq.blocks += need
        return True

    def _reserve_or_preempt(self, seq: Running, tokens: int) -> bool:
        """Blocks for `tokens` more tokens of `seq`, preempting the newest running sequences until
        they fit; False if `seq` itself had to be preempted."""
        while not self._reserve(seq, tokens):
            victim = self.running[-1]
            self._preempt(victim)
            if victim is seq:
                return False
        return True

    def _preempt(self, seq: Running) -> None:
        self.running.remove(seq)
        self.kv.free(seq.blocks)
        seq.blocks = 0
        seq.pending += seq.kv_tokens  # recompute: the prompt and every generated token again
        seq.kv_tokens = 0
        seq.preemptions += 1
        self.preemptions += 1
        self.waiting.appendleft(seq)
