"""Client-side API quota keeping: a shared token bucket and a bounded retry with backoff.

Remote platforms meter calls per credential (HealthOmics GetRun ~10 TPS per region, Seqera
20 req/s per token). One backend client owns one `TokenBucket`; every HTTP attempt, including
each retry, takes a token first, so a poller polling hundreds of handles from several threads
can never exceed the configured rate. SDK-level retries are switched off in the clients for the
same reason: a retry the limiter does not see is a call the quota does see.

Both pieces take their clock, sleep and randomness as arguments so tests drive them without
sleeping.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from omicsflow.errors import BackendTransientError, TransientError

T = TypeVar("T")

Clock = Callable[[], float]

_EPSILON = 1e-9
Sleep = Callable[[float], None]


class BackendThrottledError(BackendTransientError):
    """The platform asked us to slow down (HTTP 429 / ThrottlingException).

    `retry_after` holds the server's Retry-After hint in seconds when it gave one.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# Passed by the backends: the spread between sending and arriving the window must absorb.
ARRIVAL_MARGIN = 0.05


class TokenBucket:
    """Thread-safe token bucket: `rate` tokens per second, at most `burst` stored.

    With `burst=1` consecutive calls are at least `1/rate` apart, so no window of one second
    holds more than `rate` calls; a larger burst trades that guarantee for latency after idle
    periods (a platform with a per-second quota will throttle such a burst).
    """

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        window_margin: float = 0.0,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        if burst < 1:
            raise ValueError("burst must be >= 1")
        self.rate = float(rate)
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._stamp = clock()
        # Also a sliding one-second window over the last `rate` calls, with a margin: the
        # bucket spaces *sends*, but a delayed send followed by a punctual one can *arrive*
        # closer together, and the quota is counted on arrival (bench/bench_remote.py saw
        # rate+1 arrivals in one second without this).
        self._margin = window_margin
        use_window = window_margin > 0 and rate >= 1
        self._window: deque[float] = deque(maxlen=int(rate) if use_window else 0)

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._stamp)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        self._stamp = now

    def try_acquire(self) -> float:
        """Take a token if one is available and return 0.0; else return the seconds to wait."""
        with self._lock:
            now = self._clock()
            self._refill(now)
            if self._window and len(self._window) == self._window.maxlen:
                wait_window = self._window[0] + 1.0 + self._margin - now
                if wait_window > 0:
                    return wait_window
            # The epsilon absorbs float rounding: refilling by `wait * rate` can land a hair
            # below 1.0, and a clock too coarse to advance by that hair would spin forever.
            if self._tokens >= 1.0 - _EPSILON:
                self._tokens = max(0.0, self._tokens - 1.0)
                if self._window.maxlen:
                    self._window.append(now)
                return 0.0
            return (1.0 - self._tokens) / self.rate

    def acquire(self) -> None:
        """Block until a token is taken. Sleeping happens outside the lock."""
        while True:
            wait = self.try_acquire()
            if wait <= 0.0:
                return
            self._sleep(wait)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a transient failure.

    `max_retry_after` bounds how long a server's Retry-After may make us wait inside one call:
    a poller must not hang for an hour because a proxy said so; beyond it the error surfaces
    and the next poll cycle tries again.
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    multiplier: float = 2.0
    max_delay: float = 20.0
    max_retry_after: float = 60.0

    def backoff(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Delay after failed attempt number `attempt` (1-based): "equal jitter" backoff.

        Half the exponential delay is fixed (so retries really do back off), half is random
        (so many clients throttled at the same moment do not retry in lockstep).
        """
        ceiling = min(self.max_delay, self.base_delay * self.multiplier ** (attempt - 1))
        return ceiling / 2.0 + rand() * ceiling / 2.0


def call_with_retries(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy,
    limiter: TokenBucket | None = None,
    sleep: Sleep = time.sleep,
    rand: Callable[[], float] = random.random,
    on_retry: Callable[[int, TransientError, float], None] | None = None,
) -> T:
    """Call `fn` until it returns, retrying `TransientError`s with backoff.

    Each attempt first takes a token from `limiter`. A `BackendThrottledError` carrying
    `retry_after` waits at least that long (the server knows its own recovery better than our
    backoff curve). Permanent errors and anything else propagate at once; the last transient
    error propagates once `policy.max_attempts` is reached.
    """
    attempt = 0
    while True:
        attempt += 1
        if limiter is not None:
            limiter.acquire()
        try:
            return fn()
        except TransientError as exc:
            if attempt >= policy.max_attempts:
                raise
            delay = policy.backoff(attempt, rand)
            retry_after = getattr(exc, "retry_after", None)
            if retry_after is not None:
                if retry_after > policy.max_retry_after:
                    raise
                delay = max(delay, float(retry_after))
            if on_retry is not None:
                on_retry(attempt, exc, delay)
            sleep(delay)


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), else None."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())
