"""Deterministic run lifecycles for the fakes: advanced by polls or by hand, never by time.

A script is a list of steps. `("RUNNING", 2)` answers RUNNING to the next two status reads;
`("FAILED", {"failureReason": ..., "polls": 1})` carries details (a dict step without `polls`
lasts one read). The last step is sticky. With `auto=False` reads never advance the script;
only `advance()` does.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

Step = tuple[str, int | dict[str, Any]]


class Lifecycle:
    def __init__(self, steps: Sequence[Step], *, auto: bool = True) -> None:
        if not steps:
            raise ValueError("a script needs at least one step")
        self._steps: list[tuple[str, int, dict[str, Any]]] = []
        for status, spec in steps:
            if isinstance(spec, dict):
                details = {k: v for k, v in spec.items() if k != "polls"}
                self._steps.append((status, int(spec.get("polls", 1)), details))
            else:
                self._steps.append((status, int(spec), {}))
        self.auto = auto
        self._index = 0
        self._left = self._steps[0][1]
        self._lock = threading.Lock()
        self._forced: tuple[str, dict[str, Any]] | None = None

    @property
    def current(self) -> tuple[str, dict[str, Any]]:
        with self._lock:
            if self._forced is not None:
                return self._forced
            status, _, details = self._steps[self._index]
            return status, details

    def observe(self) -> tuple[str, dict[str, Any]]:
        """The state a status read sees; consumes one read of the current step if auto."""
        with self._lock:
            if self._forced is not None:
                return self._forced
            status, _, details = self._steps[self._index]
            if self.auto:
                self._left -= 1
                if self._left <= 0:
                    self._next()
            return status, details

    def _next(self) -> None:
        if self._index < len(self._steps) - 1:
            self._index += 1
            self._left = self._steps[self._index][1]

    def advance(self) -> tuple[str, dict[str, Any]]:
        with self._lock:
            self._next()
            status, _, details = self._steps[self._index]
            return status, details

    def force(self, status: str, details: dict[str, Any] | None = None) -> None:
        """Pin the state (e.g. after a cancel), overriding the rest of the script."""
        with self._lock:
            self._forced = (status, details or {})
