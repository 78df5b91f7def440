"""A rate budget per account, shared by every worker: one token-spacing row in PostgreSQL.

Each request takes the account's next slot with one atomic statement on the ``rate_budgets``
row (``next_slot = greatest(next_slot, now) + cost * spacing``) and sleeps until that slot, less the
burst the store allows. A plain request costs 1; a channel whose store counts points (a GraphQL query
cost) reserves its requested cost, and :meth:`PostgresRateBudget.settle` gives back what the reply says
was not spent and moves the row to the bucket state the store reported. Slots come
from PostgreSQL's clock, so workers on several machines space their requests as one. The
spacing is ``(1 + margin) / rate``: a request that reaches the store up to ``margin`` seconds
after its slot (100 ms by default) cannot bring ``rate + 1`` requests into one second there. A
slot overslept by more than half the margin, on a busy machine, is traded for a fresh one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from channel_core.errors import ConfigurationError, RateLimitedError, TransportError
from channel_core.http import Measured
from channel_core.sync.pool import PostgresPool

__all__ = ["PostgresRateBudget"]

DEFAULT_MARGIN = 0.1
MAX_SLOTS_PER_REQUEST = 3
MAX_WAIT = 60.0  # seconds: a request whose slot is further off stops (RateLimitedError) and resumes later


class PostgresRateBudget:
    """At most ``rate`` requests (cost points) per second for ``key``, with bursts of ``burst``, across all
    processes sharing the database.

    :param dsn: the database of :class:`~channel_core.sync.postgres.PostgresStore` (its migrations
        create ``rate_budgets``).
    :param key: the account's budget key (the registry uses ``<channel>:<store key>``).
    :param pool: take the connection from this :class:`~channel_core.sync.pool.PostgresPool` (a worker's jobs
        share one) and give it back on :meth:`close`.
    :param margin: extra spacing, as a share of the interval, absorbing send jitter.
    :param max_wait: the longest a request waits for its slot; when the account's slots are booked
        further ahead, :meth:`acquire` raises :class:`~channel_core.errors.RateLimitedError` without
        taking one (the run stops cleanly and resumes later). It bounds how long a notifier's write can
        be held up, which its claim lease must outlast.
    """

    def __init__(
        self,
        dsn: str,
        key: str,
        rate: float,
        *,
        schema: str = "public",
        margin: float = DEFAULT_MARGIN,
        max_wait: float = MAX_WAIT,
        burst: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        pool: PostgresPool | None = None,
    ) -> None:
        import psycopg

        if pool is not None and pool.schema != schema:
            raise ConfigurationError(f"the pool serves schema {pool.schema!r}, not {schema!r}")
        self._pool = pool or PostgresPool(dsn, schema, keep=0)
        if not rate > 0:
            raise ConfigurationError(f"rate budget {key}: the rate must be positive, got {rate}")
        self.key, self.rate, self.burst, self.margin = key, rate, max(1.0, burst), margin
        self.spacing = (1.0 + margin) / rate
        self.late_limit = margin / 2  # seconds a slot may be overslept and still used
        self.max_wait = max_wait
        self._sleep, self._clock = sleep, clock
        self._lock = threading.Lock()
        self.waited = 0.0  # seconds every acquire() of this budget waited, in total (metrics)
        self._booked = threading.local()  # per calling thread: the row's next_slot right after its reservation
        try:
            self._db = self._pool.take()
        except psycopg.OperationalError as exc:
            raise ConfigurationError(f"could not connect to PostgreSQL: {str(exc).strip()}") from None

    def _execute(self, sql: str, params: dict[str, Any] | tuple[Any, ...]) -> Any:
        """One statement; a dropped connection (a restart, a failover) is retried once on a fresh one.
        A budget that cannot be reached stops the request as unreachable: it never went out."""
        import psycopg

        for attempt in (1, 2):
            try:
                return self._db.execute(sql, params).fetchone()
            except psycopg.OperationalError as exc:
                if attempt == 2 or (not self._db.closed and not self._db.broken):
                    raise TransportError(
                        f"the rate budget's database is unavailable ({' '.join(str(exc).split())[:160]})",
                        channel=self.key.split(":", 1)[0],
                        operation="rate budget",
                        request_sent=False,
                    ) from None
                self._pool.give_back(self._db)  # broken: closed, never kept
                try:
                    self._db = self._pool.connect()
                except psycopg.OperationalError:
                    continue
        return None

    def acquire(self, cost: float = 1.0) -> float:
        """Reserve ``cost`` from the account's budget and wait until it may be spent; return the wait in seconds.

        A slot overslept by more than half the margin (a busy machine) is given up for a fresh one: a
        request sent that late could land too close to the requests of the slots after it.
        """
        waited = 0.0
        cost = min(float(cost), self.burst) if cost > 1 else float(cost)
        for _ in range(MAX_SLOTS_PER_REQUEST):
            params = {
                "key": self.key,
                "step": cost * self.spacing,
                "credit": self.burst * self.spacing,
                "max_wait": self.max_wait,
            }
            with self._lock:
                row = self._execute(
                    "INSERT INTO rate_budgets AS b (budget_key, next_slot) "
                    "VALUES (%(key)s, clock_timestamp() + make_interval(secs => %(step)s)) "
                    "ON CONFLICT (budget_key) DO UPDATE "
                    "SET next_slot = greatest(b.next_slot, clock_timestamp()) + make_interval(secs => %(step)s) "
                    "WHERE greatest(b.next_slot, clock_timestamp()) + make_interval(secs => %(step)s - %(credit)s) "
                    "<= clock_timestamp() + make_interval(secs => %(max_wait)s) "
                    "RETURNING extract(epoch FROM b.next_slot - clock_timestamp())::float8 - %(credit)s, b.next_slot",
                    params,
                )
            if row is None:  # booked further ahead than max_wait: take no slot, stop the caller
                ahead = self._execute(
                    "SELECT extract(epoch FROM next_slot - clock_timestamp())::float8 FROM rate_budgets "
                    "WHERE budget_key = %s",
                    (self.key,),
                )
                raise RateLimitedError(
                    f"the account's shared rate budget ({self.rate:g} per second) is booked more than "
                    f"{self.max_wait:g} s ahead; the run resumes later",
                    channel=self.key.split(":", 1)[0],
                    operation="rate budget",
                    retry_after=max(self.max_wait, float(ahead[0]) if ahead else self.max_wait),
                    request_sent=False,
                )
            wait = max(0.0, float(row[0]))
            self._booked.until = row[1]
            if wait <= 0:
                break  # the slot is now
            slot = self._clock() + wait
            self._sleep(wait)
            late = max(0.0, self._clock() - slot)
            waited += wait + late
            if late <= self.late_limit:
                break
        self.waited += waited
        return waited

    def settle(self, reserved: float, measured: Measured) -> None:
        """Give back what a call did not spend, and catch up with the bucket the store reported.

        The store's figures win where they say the bucket is emptier than the row does (other clients
        of the same account, a restart that forgot reservations); its size and restore rate become
        this budget's from then on. The unspent part comes back only while no other request has booked a
        slot after this one: those slots are fixed (their callers are asleep), and moving the row back
        under them would let the next caller go as if they had gone earlier than they will.
        """
        booked = getattr(self._booked, "until", None)
        self._booked.until = None
        refund = 0.0 if measured.actual is None else max(0.0, min(reserved, self.burst) - measured.actual)
        refund_seconds = refund * self.spacing  # at the rate the reservation was made
        bucket = measured.bucket
        if bucket is not None and bucket.maximum > 0 and bucket.restore_rate > 0:
            self.rate, self.burst = float(bucket.restore_rate), max(1.0, float(bucket.maximum))
            self.spacing = (1.0 + self.margin) / self.rate
            debt = max(0.0, (bucket.maximum - bucket.available)) * self.spacing
        else:
            debt = None
        if refund <= 0 and debt is None:
            return
        with self._lock:
            self._execute(
                "UPDATE rate_budgets SET next_slot = greatest("
                "CASE WHEN next_slot = %(booked)s THEN next_slot - make_interval(secs => %(refund)s) "
                "ELSE next_slot END, "
                "clock_timestamp() + make_interval(secs => %(debt)s)) WHERE budget_key = %(key)s RETURNING 1",
                {"key": self.key, "refund": refund_seconds, "debt": -1e6 if debt is None else debt, "booked": booked},
            )

    def close(self) -> None:
        """Give the connection back to the pool it came from (or close it)."""
        self._pool.give_back(self._db)

    def __enter__(self) -> PostgresRateBudget:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PostgresRateBudget(key={self.key!r}, rate={self.rate})"  # never the DSN
