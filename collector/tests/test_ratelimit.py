"""Token buckets per project."""

from telly_autoinst_collector.ratelimit import RateLimiter


class _Clock:
    now = 0.0

    def __call__(self):
        return self.now


def test_bursts_then_refills_at_the_rate():
    clock = _Clock()
    limiter = RateLimiter(rate=2, burst=3, clock=clock)
    assert [limiter.take("p") for _ in range(3)] == [0, 0, 0]
    assert limiter.take("p") == 1  # Retry-After in whole seconds, at least 1
    assert limiter.take("other") == 0  # buckets are per project
    clock.now += 0.5
    assert limiter.take("p") == 0
    assert limiter.take("p") >= 1


def test_long_waits_are_reported():
    clock = _Clock()
    limiter = RateLimiter(rate=0.1, burst=1, clock=clock)
    assert limiter.take("p") == 0
    assert limiter.take("p") == 10


def test_rate_zero_turns_limits_off():
    limiter = RateLimiter(rate=0, burst=0)
    assert all(limiter.take("p") == 0 for _ in range(1000))
