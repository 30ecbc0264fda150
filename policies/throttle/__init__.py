"""Rate-limit decisions per SLA tier (GCRA), in process or shared through Redis; no web framework here."""

from policies.throttle.decision import RateLimitDecision, RateLimitPolicy, Throttle, ThrottleUnavailable
from policies.throttle.memory import MemoryThrottle
from policies.throttle.redis_throttle import RedisThrottle

__all__ = [
    "MemoryThrottle",
    "RateLimitDecision",
    "RateLimitPolicy",
    "RedisThrottle",
    "Throttle",
    "ThrottleUnavailable",
]
