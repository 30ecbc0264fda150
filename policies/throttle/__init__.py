"""Rate-limit decisions per SLA tier (GCRA), in process or shared through Redis; no web framework here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from policies.throttle.decision import RateLimitDecision, RateLimitPolicy, Throttle, ThrottleUnavailable
from policies.throttle.memory import MemoryThrottle

if TYPE_CHECKING:
    from policies.throttle.redis_throttle import RedisThrottle

__all__ = [
    "MemoryThrottle",
    "RateLimitDecision",
    "RateLimitPolicy",
    "RedisThrottle",
    "Throttle",
    "ThrottleUnavailable",
]


def __getattr__(name: str) -> Any:
    # redis-py imports OpenTelemetry's SDK whenever it is installed: a server without Redis (and
    # without tracing) imports neither.
    if name == "RedisThrottle":
        from policies.throttle.redis_throttle import RedisThrottle

        return RedisThrottle
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
