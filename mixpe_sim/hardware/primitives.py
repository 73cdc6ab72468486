"""Small SimPy primitives, cheaper than the general-purpose ones for this engine's patterns."""

from __future__ import annotations

from typing import Final

import simpy

from mixpe_sim.hardware.clock import ArrivalEvent, Clock

NOT_YET: Final = -1  # a token whose arrival time is not known yet (its transfer has not been issued)


class Arrivals:
    """When each token's last byte is (or will be) in its buffer.

    Arrival times are plain numbers: a consumer that finds its tile already there continues without
    an event, one that arrives early waits with a single timeout, and only a consumer that needs a
    tile whose transfer has not been issued yet gets an event, armed when the arrival becomes known.
    """

    def __init__(self, env: Clock, count: int) -> None:
        self.env = env
        self.ready_ps = [NOT_YET] * count
        self._waiters: dict[int, list[ArrivalEvent]] = {}

    def deliver(self, token_id: int, ready_ps: int) -> None:
        """The token's last byte arrives at `ready_ps` (>= now)."""
        self.ready_ps[token_id] = ready_ps
        if self._waiters and token_id in self._waiters:
            delay = ready_ps - self.env.now
            for waiter in self._waiters.pop(token_id):
                waiter.arm(delay)

    def wait(self, token_id: int) -> simpy.Event:
        """An event that fires when the token has arrived (a timeout if its time is known)."""
        ready = self.ready_ps[token_id]
        if ready != NOT_YET:
            return self.env.timeout(max(0, ready - self.env.now))
        waiter = ArrivalEvent(self.env)  # type: ignore[arg-type]  # the Clock is a simpy.Environment
        self._waiters.setdefault(token_id, []).append(waiter)
        return waiter
