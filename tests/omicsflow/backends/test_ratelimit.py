"""Token bucket and retry helper, driven by an injected clock: no test sleeps."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omicsflow.backends.ratelimit import (
    BackendThrottledError,
    RetryPolicy,
    TokenBucket,
    call_with_retries,
    parse_retry_after,
)
from omicsflow.errors import BackendPermanentError, BackendTransientError


class FakeClock:
    """Time that only moves when someone sleeps."""

    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


def acquire_times(bucket: TokenBucket, clock: FakeClock, n: int) -> list[float]:
    times = []
    for _ in range(n):
        bucket.acquire()
        times.append(clock.t)
    return times


def test_burst_one_spaces_calls_by_one_over_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(4, 1, clock=clock, sleep=clock.sleep)
    times = acquire_times(bucket, clock, 9)
    assert times[0] == 0.0
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(g == pytest.approx(0.25) for g in gaps)
    assert times[-1] == pytest.approx(2.0)


def test_burst_allows_that_many_immediate_calls_then_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2, 3, clock=clock, sleep=clock.sleep)
    times = acquire_times(bucket, clock, 5)
    assert times[:3] == [0.0, 0.0, 0.0]
    assert times[3] == pytest.approx(0.5)
    assert times[4] == pytest.approx(1.0)


def test_idle_time_refills_only_up_to_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, 2, clock=clock, sleep=clock.sleep)
    clock.t = 100.0
    assert bucket.try_acquire() == 0.0
    assert bucket.try_acquire() == 0.0
    assert bucket.try_acquire() == pytest.approx(0.1)


def test_invalid_parameters_are_rejected() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0)
    with pytest.raises(ValueError):
        TokenBucket(1, 0)


def test_concurrent_threads_never_get_more_than_the_available_tokens() -> None:
    clock = FakeClock()  # frozen: nothing refills while the threads race
    bucket = TokenBucket(5, 3, clock=clock, sleep=clock.sleep)
    granted: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(16)

    def worker() -> None:
        barrier.wait()
        for _ in range(50):
            if bucket.try_acquire() == 0.0:
                with lock:
                    granted.append(1)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == 3


@settings(max_examples=200, deadline=None)
@given(
    rate=st.integers(min_value=1, max_value=20),
    idles=st.lists(st.floats(min_value=0, max_value=2, allow_nan=False), min_size=1, max_size=60),
)
def test_no_one_second_window_exceeds_the_rate(rate: int, idles: list[float]) -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate, 1, clock=clock, sleep=clock.sleep)
    times = []
    for idle in idles:
        clock.t += idle
        bucket.acquire()
        times.append(clock.t)
    for i, start in enumerate(times):
        in_window = [t for t in times[i:] if t < start + 1.0 - 1e-9]
        assert len(in_window) <= rate


class Flaky:
    """Raises the given errors in order, then returns 'ok'."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def test_transient_errors_are_retried_with_exponential_backoff() -> None:
    clock = FakeClock()
    fn = Flaky(BackendTransientError("a"), BackendTransientError("b"), BackendTransientError("c"))
    policy = RetryPolicy(max_attempts=5, base_delay=1.0, multiplier=2.0, max_delay=100)
    assert call_with_retries(fn, policy=policy, sleep=clock.sleep, rand=lambda: 0.0) == "ok"
    assert fn.calls == 4
    # Equal jitter with rand=0: half of 1, 2, 4.
    assert clock.sleeps == [0.5, 1.0, 2.0]


def test_jitter_stays_within_half_to_full_delay_and_caps_at_max() -> None:
    policy = RetryPolicy(base_delay=1.0, multiplier=2.0, max_delay=3.0)
    assert policy.backoff(1, lambda: 0.0) == 0.5
    assert policy.backoff(1, lambda: 1.0) == 1.0
    assert policy.backoff(10, lambda: 1.0) == 3.0
    assert policy.backoff(10, lambda: 0.0) == 1.5


def test_retry_after_is_honoured_when_longer_than_backoff() -> None:
    clock = FakeClock()
    fn = Flaky(BackendThrottledError("slow down", retry_after=7.0))
    policy = RetryPolicy(base_delay=0.1)
    assert call_with_retries(fn, policy=policy, sleep=clock.sleep, rand=lambda: 1.0) == "ok"
    assert clock.sleeps == [7.0]


def test_absurd_retry_after_surfaces_instead_of_blocking() -> None:
    clock = FakeClock()
    fn = Flaky(BackendThrottledError("come back tomorrow", retry_after=86400))
    with pytest.raises(BackendThrottledError):
        call_with_retries(fn, policy=RetryPolicy(max_retry_after=60), sleep=clock.sleep)
    assert fn.calls == 1
    assert clock.sleeps == []


def test_permanent_errors_are_not_retried() -> None:
    clock = FakeClock()
    fn = Flaky(BackendPermanentError("no"))
    with pytest.raises(BackendPermanentError):
        call_with_retries(fn, policy=RetryPolicy(), sleep=clock.sleep)
    assert fn.calls == 1


def test_attempts_are_bounded_and_the_last_error_surfaces() -> None:
    clock = FakeClock()
    fn = Flaky(*[BackendTransientError(f"e{i}") for i in range(10)])
    with pytest.raises(BackendTransientError, match="e2"):
        call_with_retries(fn, policy=RetryPolicy(max_attempts=3), sleep=clock.sleep)
    assert fn.calls == 3
    assert len(clock.sleeps) == 2


def test_every_attempt_takes_a_limiter_token() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2, 1, clock=clock, sleep=clock.sleep)
    fn = Flaky(BackendTransientError("a"), BackendTransientError("b"))
    policy = RetryPolicy(base_delay=0.0)
    call_with_retries(fn, policy=policy, limiter=bucket, sleep=clock.sleep, rand=lambda: 0.0)
    # Three attempts through a 2/s bucket: the limiter alone spaces them 0.5 s apart.
    assert clock.t == pytest.approx(1.0)


def test_on_retry_reports_attempt_error_and_delay() -> None:
    seen: list[tuple[int, str, float]] = []
    fn = Flaky(BackendTransientError("boom"))
    call_with_retries(
        fn,
        policy=RetryPolicy(base_delay=2.0),
        sleep=lambda s: None,
        rand=lambda: 0.0,
        on_retry=lambda n, e, d: seen.append((n, str(e), d)),
    )
    assert seen == [(1, "boom", 1.0)]


def test_parse_retry_after_accepts_seconds_and_http_dates() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    base = datetime(2030, 1, 1, tzinfo=UTC)
    header = format_datetime(base + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(header, now=lambda: base.timestamp()) == pytest.approx(30.0)


def test_window_margin_keeps_rate_calls_per_second_even_when_sends_bunch() -> None:
    """A send delayed by scheduling lets the next one go early; the window still holds at
    most `rate` calls in any (1 s + margin)."""
    from omicsflow.backends.ratelimit import TokenBucket

    now = [0.0]
    bucket = TokenBucket(4, 1, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s),
                         window_margin=0.05)
    sent = []
    for delay in (0.0, 0.24, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0):
        now[0] += delay  # the caller was late (descheduled) before asking
        bucket.acquire()
        sent.append(now[0])
    for i in range(len(sent) - 4):
        assert sent[i + 4] - sent[i] >= 1.05 - 1e-9
