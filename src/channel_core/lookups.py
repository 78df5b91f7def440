"""What a channel asks a store when it connects, kept for a short while: a worker's next job skips the asking.

A fleet worker connects to a store for every job. Some of what a channel learns then changes rarely (the
store's account, its list of order states) yet costs a call each time, more than an unchanged store's whole
sync. A :class:`LookupCache` keeps such answers per store for ``ttl`` seconds. Its keys are digests of what
identifies the store and its credentials (:func:`lookup_key`), so a secret never sits in memory twice and
new credentials never see an old answer. Thread-safe; least recently stored entries go first past ``size``.

A process keeps only so many answers, and a fleet worker meets every store of the fleet in turn: beyond its
``size`` stores, an answer is gone before that store's next job. A host that keeps the answers with the store
itself (the fleet: on the store's registry row, read and written by statements the job makes anyway) hands them
to the job's ``connect`` with :func:`keep_lookups`; the cache then takes an answer from there when its memory has
none, and notes what it asked or forgot for the host to write back (:class:`KeptLookups`).
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

__all__ = ["KeptLookups", "LookupCache", "keep_lookups", "lookup_key"]

T = TypeVar("T")


def lookup_key(*parts: object) -> str:
    """A digest of ``parts`` (base URL, token, ...): a cache key that holds no secret."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(repr(part).encode())
        digest.update(b"\0")
    return digest.hexdigest()


class KeptLookups:
    """A store's lookup answers as its host keeps them between processes, and what a job changed of them.

    :param saved: what :meth:`saved` returned when they were last written (``None``: nothing yet):
        ``{key: {what: [at, answer]}}``, ``at`` in seconds on the host's clock; anything else in it is ignored
        (those answers are asked again).
    :param now: the host's clock when ``saved`` was read (the database's ``now()`` in the same statement):
        ages are told on that clock, never on this machine's.
    """

    MAX_AGE = 86_400.0  # an answer older than any ttl allows is dropped when written back

    def __init__(
        self,
        saved: Any = None,
        *,
        now: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock, self._read_at, self._now = clock, clock(), now
        self._entries: dict[tuple[str, str], tuple[float, Any]] = {}
        for key, answers in saved.items() if isinstance(saved, Mapping) else ():
            for what, entry in answers.items() if isinstance(answers, Mapping) else ():
                at = entry[0] if isinstance(entry, list) and len(entry) == 2 else None
                if isinstance(at, int | float) and not isinstance(at, bool):
                    self._entries[key, what] = (float(entry[0]), entry[1])  # anything else: not kept, asked
        self.changed = False  # asked or forgot something since it was read: write it back
        self._lock = threading.Lock()

    def _host_now(self) -> float:
        return self._now + (self._clock() - self._read_at)

    def age(self, key: str, what: str) -> tuple[float, Any] | None:
        """How old the kept answer to ``what`` for ``key`` is (seconds, on the host's clock), and the answer."""
        with self._lock:
            entry = self._entries.get((key, what))
        return None if entry is None else (self._host_now() - entry[0], entry[1])

    def note(self, key: str, what: str, answer: Any) -> None:
        """Keep ``answer`` as of now; an answer that is not plain JSON data stays in the process only."""
        try:
            json.dumps(answer)
        except (TypeError, ValueError):
            return
        with self._lock:
            self._entries[key, what] = (self._host_now(), answer)
            self.changed = True

    def forget(self, key: str) -> None:
        with self._lock:
            for entry in [e for e in self._entries if e[0] == key]:
                del self._entries[entry]
                self.changed = True

    def saved(self) -> dict[str, dict[str, list[Any]]]:
        """What to write back (``saved`` for the next reader), without answers older than :attr:`MAX_AGE`."""
        oldest = self._host_now() - self.MAX_AGE
        kept: dict[str, dict[str, list[Any]]] = {}
        with self._lock:
            for (key, what), (at, answer) in self._entries.items():
                if at >= oldest:
                    kept.setdefault(key, {})[what] = [at, answer]
        return kept


_KEPT: contextvars.ContextVar[KeptLookups | None] = contextvars.ContextVar("channel_kept_lookups", default=None)


@contextmanager
def keep_lookups(kept: KeptLookups | None) -> Iterator[None]:
    """Within the block (this thread and context), every :class:`LookupCache` also reads and notes ``kept``."""
    token = _KEPT.set(kept)
    try:
        yield
    finally:
        _KEPT.reset(token)


class LookupCache:
    """Answers kept ``ttl`` seconds per key; ``ttl <= 0`` always asks."""

    def __init__(self, *, size: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.size, self._clock = size, clock
        self._entries: OrderedDict[tuple[str, str], tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, what: str, ttl: float, ask: Callable[[], T]) -> T:
        """The answer to ``what`` for ``key`` if asked less than ``ttl`` seconds ago (kept here, or by the host:
        :func:`keep_lookups`), else ``ask()`` (kept in both)."""
        now = self._clock()
        with self._lock:
            found = self._entries.get((key, what))
        if found is not None and ttl > 0 and now - found[0] < ttl:
            answer: T = found[1]
            return answer
        kept = _KEPT.get()
        aged = kept.age(key, what) if kept is not None and ttl > 0 else None
        if aged is not None and 0 <= aged[0] < ttl:
            self._remember(key, what, aged[1], now - aged[0])
            kept_answer: T = aged[1]
            return kept_answer
        answer = ask()  # outside the lock: two jobs may both ask, and the later answer stays
        if ttl > 0:
            self.put(key, what, answer, now=now)
        return answer

    def put(self, key: str, what: str, answer: Any, *, now: float | None = None) -> None:
        """Keep ``answer`` to ``what`` for ``key`` from now (a channel that learnt it another way, e.g. a list
        asked for again because it proved out of date)."""
        self._remember(key, what, answer, self._clock() if now is None else now)
        kept = _KEPT.get()
        if kept is not None:
            kept.note(key, what, answer)

    def _remember(self, key: str, what: str, answer: Any, at: float) -> None:
        with self._lock:
            self._entries[key, what] = (at, answer)
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
        kept = _KEPT.get()
        if kept is not None:
            kept.forget(key)
