"""A throttle whose budgets live in this process: right for one replica, and the default."""

from __future__ import annotations

import time
from collections.abc import Callable

from policies.throttle.decision import RateLimitDecision, RateLimitPolicy
from policies.throttle.gcra import MICROSECONDS, check_cost, conform

# Below this many keys a sweep costs more than the memory it frees.
MIN_SWEEP_SIZE = 1024


class MemoryThrottle:
    """GCRA state in a dict, keyed by policy name and consumer key.

    `check` never awaits, so one event loop cannot interleave two decisions and no lock is needed.
    Consumers whose TAT has passed hold nothing a fresh entry would not, so they are swept out whenever
    the table has doubled since the last sweep: memory stays within twice the consumers active in the
    last window, at amortised constant cost.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tats: dict[str, int] = {}
        self._sweep_at = MIN_SWEEP_SIZE

    def __len__(self) -> int:
        return len(self._tats)

    async def check(self, key: str, policy: RateLimitPolicy, cost: int = 1) -> RateLimitDecision:
        check_cost(policy, cost)
        now = round(self._clock() * MICROSECONDS)
        slot = f"{policy.name}:{key}"
        decision, new_tat = conform(self._tats.get(slot), now, policy, cost)
        if new_tat is not None:
            self._tats[slot] = new_tat
            if len(self._tats) >= self._sweep_at:
                self._sweep(now)
        return decision

    def _sweep(self, now: int) -> None:
        self._tats = {slot: tat for slot, tat in self._tats.items() if tat > now}
        self._sweep_at = max(MIN_SWEEP_SIZE, 2 * len(self._tats))
