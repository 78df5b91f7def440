"""What a channel asks a store when it connects, kept for a short while: a worker's next job skips the asking.

A fleet worker connects to a store for every job. Some of what a channel learns then changes rarely (the
store's account, its list of order states) yet costs a call each time, more than an unchanged store's whole
sync. A :class:`LookupCache` keeps such answers per store for ``ttl`` seconds. Its keys are digests of what
identifies the store and its credentials (:func:`lookup_key`), so a secret never sits in memory twice and
new credentials never see an old answer. Thread-safe; least recently stored entries go first past ``size``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["LookupCache", "lookup_key"]

T = TypeVar("T")


def lookup_key(*parts: object) -> str:
    """A digest of ``parts`` (base URL, token, ...): a cache key that holds no secret."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(repr(part).encode())
        digest.update(b"\0")
    return digest.hexdigest()


class LookupCache:
    """Answers kept ``ttl`` seconds per key; ``ttl <= 0`` always asks."""

    def __init__(self, *, size: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.size, self._clock = size, clock
        self._entries: OrderedDict[tuple[str, str], tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, what: str, ttl: float, ask: Callable[[], T]) -> T:
        """The answer to ``what`` for ``key`` if asked less than ``ttl`` seconds ago, else ``ask()`` (kept)."""
        now = self._clock()
        with self._lock:
            found = self._entries.get((key, what))
        if found is not None and ttl > 0 and now - found[0] < ttl:
            answer: T = found[1]
            return answer
        answer = ask()  # outside the lock: two jobs may both ask, and the later answer stays
        if ttl > 0:
            self.put(key, what, answer, now=now)
        return answer

    def put(self, key: str, what: str, answer: Any, *, now: float | None = None) -> None:
        """Keep ``answer`` to ``what`` for ``key`` from now (a channel that learnt it another way, e.g. a list
        asked for again because it proved out of date)."""
        with self._lock:
            self._entries[key, what] = (self._clock() if now is None else now, answer)
            self._entries.move_to_end((key, what))
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Drop every answer."""
        with self._lock:
            self._entries.clear()

    def forget(self, key: str) -> None:
        """Drop every answer kept for ``key`` (credentials refused, a lookup that proved stale)."""
        with self._lock:
            for entry in [e for e in self._entries if e[0] == key]:
                del self._entries[entry]
