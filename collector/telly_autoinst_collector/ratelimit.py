"""Per-project token buckets: a flood from one project cannot starve the others."""

import math
import time


class RateLimiter:
    """``rate`` reports per second per project with bursts up to ``burst``; rate 0 turns it off."""

    def __init__(self, rate, burst, clock=time.monotonic):
        self._rate, self._burst, self._clock = float(rate), float(burst), clock
        self._buckets = {}  # project_id -> [tokens, last refill time]

    def take(self, project_id):
        """0 if a report may pass now, else the whole seconds to wait (for Retry-After)."""
        if self._rate <= 0:
            return 0
        now = self._clock()
        bucket = self._buckets.get(project_id)
        if bucket is None:
            bucket = self._buckets[project_id] = [self._burst, now]
        tokens = min(self._burst, bucket[0] + (now - bucket[1]) * self._rate)
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return 0
        bucket[0] = tokens
        return max(1, math.ceil((1.0 - tokens) / self._rate))
