"""The PostgreSQL store: the same :class:`~channel_core.sync.store.OrderStore` for hosts with many stores.

psycopg 3 (``pip install 'channel-integrations[postgres]'``), orders as JSONB beside
the columns the engine queries, versioned migrations in ``channel_schema``. Every
table is keyed by (channel, account, order): two stores' order 100001 never
meet. A page and its checkpoint commit in one transaction; the notification
claim is one atomic statement, so workers on many machines share it safely.

Pass ``schema`` to keep several hosts (or tests) apart in one database.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any

from channel_core.errors import ConfigurationError, FencedOutError
from channel_core.hooktypes import WebhookEvent
from channel_core.models import NotificationResult, Order, Shipment, from_dict, to_dict
from channel_core.sync.pool import PostgresPool
from channel_core.sync.store import (
    ACCOUNT_TABLES,
    ROWS_OF_AN_ACCOUNT,
    Checkpoint,
    FailedOrderRecord,
    NotificationRecord,
    RunStart,
    StoredOrder,
    WriteOutcome,
    canonical_json,
    failed_attempt,
    fingerprint_of,
    notification_id,
)

__all__ = ["MIGRATIONS", "PostgresStore"]

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE orders (
        channel TEXT NOT NULL, account_id TEXT NOT NULL, order_id TEXT NOT NULL,
        order_number TEXT NOT NULL, status TEXT NOT NULL, modified_at TIMESTAMPTZ NOT NULL,
        fingerprint TEXT NOT NULL, data JSONB NOT NULL,
        imported_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (channel, account_id, order_id)
    );
    CREATE TABLE versions (
        channel TEXT NOT NULL, account_id TEXT NOT NULL, order_id TEXT NOT NULL, version TEXT NOT NULL,
        PRIMARY KEY (channel, account_id, order_id)
    );
    CREATE TABLE skipped (
        channel TEXT NOT NULL, account_id TEXT NOT NULL, order_id TEXT NOT NULL, reason TEXT NOT NULL,
        seen_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (channel, account_id, order_id)
    );
    CREATE TABLE failed (
        channel TEXT NOT NULL, account_id TEXT NOT NULL, order_id TEXT NOT NULL, error TEXT NOT NULL,
        attempts INTEGER NOT NULL, last_seen TIMESTAMPTZ NOT NULL, next_attempt TIMESTAMPTZ,
        parked BOOLEAN NOT NULL DEFAULT FALSE, PRIMARY KEY (channel, account_id, order_id)
    );
    CREATE TABLE checkpoints (
        channel TEXT NOT NULL, account_id TEXT NOT NULL, next_start TIMESTAMPTZ, complete_until TIMESTAMPTZ,
        cursor TEXT, cursor_since TIMESTAMPTZ, updated_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (channel, account_id)
    );
    CREATE TABLE notifications (
        notification_id TEXT PRIMARY KEY, channel TEXT NOT NULL, account_id TEXT NOT NULL,
        order_id TEXT NOT NULL, shipment JSONB NOT NULL, status TEXT NOT NULL, fields_sent JSONB NOT NULL,
        message TEXT, attempts INTEGER NOT NULL, created_at TIMESTAMPTZ NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL, next_attempt TIMESTAMPTZ
    );
    CREATE INDEX notifications_open ON notifications (channel, account_id, status);
    CREATE TABLE fences (
        channel TEXT NOT NULL, account_id TEXT NOT NULL, fence BIGINT NOT NULL, PRIMARY KEY (channel, account_id)
    );
    CREATE TABLE notification_claims (
        channel TEXT NOT NULL, account_id TEXT NOT NULL, order_id TEXT NOT NULL, owner TEXT NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (channel, account_id, order_id)
    );
    """,
    """
    CREATE TABLE sync_runs (
        id BIGSERIAL PRIMARY KEY, channel TEXT NOT NULL, account_id TEXT NOT NULL, store_key TEXT,
        finished_at TIMESTAMPTZ NOT NULL, stopped TEXT, summary JSONB NOT NULL
    );
    CREATE INDEX sync_runs_by_store ON sync_runs (channel, account_id, finished_at DESC);
    """,
    """
    CREATE TABLE stores (
        store_key TEXT PRIMARY KEY, channel TEXT NOT NULL, settings JSONB NOT NULL, credentials TEXT NOT NULL,
        every_seconds DOUBLE PRECISION NOT NULL, next_run TIMESTAMPTZ NOT NULL,
        requests_per_second DOUBLE PRECISION, quota_reset TEXT NOT NULL, quota_timezone TEXT NOT NULL,
        parked_until TIMESTAMPTZ, parked_reason TEXT, account_id TEXT, last_run_at TIMESTAMPTZ,
        created_at TIMESTAMPTZ NOT NULL
    );
    CREATE INDEX stores_due ON stores (next_run);
    CREATE TABLE rate_budgets (budget_key TEXT PRIMARY KEY, next_slot TIMESTAMPTZ NOT NULL);
    """,
    """
    ALTER TABLE notifications ADD COLUMN seq BIGSERIAL;
    CREATE INDEX notifications_by_order ON notifications (channel, account_id, order_id, seq);
    ALTER TABLE checkpoints ADD COLUMN clock_lag DOUBLE PRECISION;
    CREATE INDEX sync_runs_last ON sync_runs (store_key, finished_at DESC, id DESC);
    """,
    """
    CREATE TABLE webhook_events (
        channel TEXT NOT NULL, store TEXT NOT NULL, event_id TEXT NOT NULL, topic TEXT NOT NULL,
        account_id TEXT NOT NULL, order_ids JSONB NOT NULL, received_at TIMESTAMPTZ NOT NULL, done_at TIMESTAMPTZ,
        PRIMARY KEY (channel, store, event_id)
    );
    CREATE INDEX webhook_events_pending ON webhook_events (channel, store) WHERE done_at IS NULL;
    """,
    """
    ALTER TABLE stores ADD COLUMN last_stopped TEXT, ADD COLUMN last_error TEXT;
    """,
    """
    CREATE FUNCTION channel_check_fence(c TEXT, a TEXT, expected BIGINT) RETURNS VOID LANGUAGE plpgsql AS $$
    DECLARE current BIGINT;
    BEGIN
        SELECT fence INTO current FROM fences WHERE channel = c AND account_id = a FOR SHARE;
        IF current IS NOT NULL AND current <> expected THEN
            RAISE EXCEPTION 'another run of % % took over (fence %, this run %); stopping', c, a, current, expected
                USING ERRCODE = 'CF001';
        END IF;
    END $$;
    """,
    """
    CREATE TABLE sync_runs_daily (
        channel TEXT NOT NULL, account_id TEXT NOT NULL, store_key TEXT NOT NULL, day DATE NOT NULL,
        runs INTEGER NOT NULL, completed INTEGER NOT NULL, imported BIGINT NOT NULL, updated BIGINT NOT NULL,
        failed BIGINT NOT NULL, last_stopped TEXT,
        PRIMARY KEY (store_key, day, channel, account_id)
    );
    """,
    # what a channel asks at connect, kept with the store for the next job whichever worker runs it
    "ALTER TABLE stores ADD COLUMN lookups JSONB;",
)
FENCED_OUT = "CF001"  # the SQLSTATE channel_check_fence raises: a later run took the store's fence


def _now() -> datetime:
    return datetime.now(UTC)


# One statement per order: the upsert (skipped when the fingerprint is unchanged), clearing its skip and failure
# records, and its version (when given). Every CTE sees the snapshot before the statement, so `old` is the
# fingerprint as it was.
_SAVE_ORDER = (
    "WITH old AS (SELECT fingerprint FROM orders WHERE channel=%(c)s AND account_id=%(a)s AND order_id=%(o)s), "
    "up AS (INSERT INTO orders VALUES (%(c)s,%(a)s,%(o)s,%(number)s,%(status)s,%(modified)s,%(digest)s,"
    "%(data)s::jsonb,%(now)s,%(now)s) ON CONFLICT (channel, account_id, order_id) DO UPDATE SET "
    "order_number=EXCLUDED.order_number, status=EXCLUDED.status, modified_at=EXCLUDED.modified_at, "
    "fingerprint=EXCLUDED.fingerprint, data=EXCLUDED.data, updated_at=EXCLUDED.updated_at "
    "WHERE orders.fingerprint <> EXCLUDED.fingerprint RETURNING 1), "
    "s AS (DELETE FROM skipped WHERE channel=%(c)s AND account_id=%(a)s AND order_id=%(o)s), "
    "f AS (DELETE FROM failed WHERE channel=%(c)s AND account_id=%(a)s AND order_id=%(o)s), "
    "v AS (INSERT INTO versions SELECT %(c)s, %(a)s, %(o)s, %(version)s::text WHERE %(version)s::text IS NOT NULL "
    "ON CONFLICT (channel, account_id, order_id) DO UPDATE SET version=EXCLUDED.version) "
    "SELECT (SELECT fingerprint FROM old)"
)

# A page of distinct orders as one statement: the page goes as one array per column, so the client encodes
# one parameter set, not one per order; in binary (%(x)b), since a text array escapes every element's quotes
# in Python. A page naming an order twice takes _SAVE_ORDER per order instead.
_SAVE_PAGE = (
    "WITH page AS (SELECT * FROM unnest(%(o)b::text[], %(number)b::text[], %(status)b::text[], "
    "%(modified)b::timestamptz[], %(digest)b::text[], %(data)b::text[], %(version)b::text[]) "
    "AS p(order_id, order_number, status, modified_at, fingerprint, data, version)), "
    "old AS (SELECT order_id, fingerprint FROM orders WHERE channel=%(c)s AND account_id=%(a)s "
    "AND order_id = ANY(%(o)b::text[])), "
    "up AS (INSERT INTO orders SELECT %(c)s, %(a)s, order_id, order_number, status, modified_at, fingerprint, "
    "data::jsonb, %(now)s, %(now)s FROM page ON CONFLICT (channel, account_id, order_id) DO UPDATE SET "
    "order_number=EXCLUDED.order_number, status=EXCLUDED.status, modified_at=EXCLUDED.modified_at, "
    "fingerprint=EXCLUDED.fingerprint, data=EXCLUDED.data, updated_at=EXCLUDED.updated_at "
    "WHERE orders.fingerprint <> EXCLUDED.fingerprint RETURNING 1), "
    "s AS (DELETE FROM skipped WHERE channel=%(c)s AND account_id=%(a)s AND order_id = ANY(%(o)b::text[])), "
    "f AS (DELETE FROM failed WHERE channel=%(c)s AND account_id=%(a)s AND order_id = ANY(%(o)b::text[])), "
    "v AS (INSERT INTO versions SELECT %(c)s, %(a)s, order_id, version FROM page WHERE version IS NOT NULL "
    "ON CONFLICT (channel, account_id, order_id) DO UPDATE SET version=EXCLUDED.version) "
    "SELECT old.order_id, old.fingerprint FROM old"
)

_CHECKPOINT_UPSERT = (
    "INSERT INTO checkpoints (channel, account_id, next_start, complete_until, cursor, cursor_since, updated_at, "
    "clock_lag) SELECT %(c)s::text, %(a)s::text, %(next_start)s::timestamptz, %(complete_until)s::timestamptz, "
    "%(cursor)s::text, %(cursor_since)s::timestamptz, %(now)s::timestamptz, %(lag)s::float8 {source}"
    "ON CONFLICT (channel, account_id) DO UPDATE SET next_start=EXCLUDED.next_start, "
    "complete_until=EXCLUDED.complete_until, cursor=EXCLUDED.cursor, cursor_since=EXCLUDED.cursor_since, "
    "updated_at=EXCLUDED.updated_at, clock_lag=EXCLUDED.clock_lag"
)
_SAVE_CHECKPOINT = _CHECKPOINT_UPSERT.format(source="")
# the same upsert fed by the fence check, which raises when a later run took the store: one statement
_SAVE_CHECKPOINT_FENCED = "WITH fenced AS (SELECT channel_check_fence(%(c)s, %(a)s, %(fence)s)) " + (
    _CHECKPOINT_UPSERT.format(source="FROM fenced ")
)


def _held_under(account: str) -> str:
    """SQL true when channel ``%(c)s`` keeps any row under the account id expression ``account`` (an id an
    older release used, found at a run's start and before an adoption)."""
    return " OR ".join(
        f"EXISTS (SELECT 1 FROM {table} WHERE channel = %(c)s AND account_id = {account})"  # noqa: S608
        for table in ROWS_OF_AN_ACCOUNT
    )


def _fenced_out(exc: Exception) -> FencedOutError | None:
    """The :class:`FencedOutError` a failed fence check in the database stands for, else ``None``."""
    if getattr(exc, "sqlstate", None) != FENCED_OUT:
        return None
    diag = getattr(exc, "diag", None)
    return FencedOutError(str(getattr(diag, "message_primary", None) or exc))


class PostgresStore:
    """An :class:`~channel_core.sync.store.OrderStore` in PostgreSQL. Thread-safe (one connection, a lock).

    :param dsn: a libpq connection string or URL (``postgresql://user@host:5432/db``).
    :param schema: the schema holding the tables (created when missing); default ``public``.
    :param pool: take the connection from this :class:`~channel_core.sync.pool.PostgresPool` and give it
        back on :meth:`close`; the migrations are then checked once per pool (a worker's jobs share one).
    """

    def __init__(self, dsn: str, *, schema: str = "public", pool: PostgresPool | None = None) -> None:
        try:
            import psycopg
        except ImportError:  # pragma: no cover - only without the extra installed
            raise ConfigurationError("PostgreSQL needs psycopg: pip install 'channel-integrations[postgres]'") from None
        if pool is not None and pool.schema != schema:
            raise ConfigurationError(f"the pool serves schema {pool.schema!r}, not {schema!r}")
        self._pool = pool or PostgresPool(dsn, schema, keep=0)
        self.schema = schema
        self._lock = threading.RLock()
        self._depth = 0  # transaction() nesting on this connection
        try:
            self._db = self._pool.take()
        except psycopg.OperationalError as exc:
            raise ConfigurationError(f"could not connect to PostgreSQL: {str(exc).strip()}") from None
        if not self._pool.migrated:
            try:
                self._migrate()
            except BaseException:
                self._db.close()
                raise
            self._pool.migrated = True

    def _migrate(self) -> None:
        with self._lock, self._db.transaction():  # not pipelined: a migration is several commands in one string
            # Workers starting at once: IF NOT EXISTS is not safe under concurrency in PostgreSQL, so the
            # schema, its tables and the migrations are created under one transaction-scoped advisory lock.
            # The connection's search_path names the schema from the start (PostgresPool.connect).
            self._db.execute("SELECT pg_advisory_xact_lock(hashtext('channel_core.migrations'))")
            self._db.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            self._db.execute("CREATE TABLE IF NOT EXISTS channel_schema (version INTEGER NOT NULL)")
            row = self._db.execute("SELECT max(version) FROM channel_schema").fetchone()
            version = row[0] if row and row[0] is not None else 0
            if version > len(MIGRATIONS):
                raise ConfigurationError(
                    f"the PostgreSQL schema {self.schema!r} is at version {version}, newer than this "
                    f"channel_core ({len(MIGRATIONS)}); upgrade the package"
                )
            for number in range(version, len(MIGRATIONS)):
                self._db.execute(MIGRATIONS[number])
                self._db.execute("INSERT INTO channel_schema VALUES (%s)", (number + 1,))

    def close(self) -> None:
        """Give the connection back to the pool it came from (or close it)."""
        with self._lock:
            self._pool.give_back(self._db)

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PostgresStore(schema={self.schema!r})"  # never the DSN: it may carry a password

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction; nested calls join the outer one (no savepoints, as on SQLite): all or nothing.

        Statements whose results are not read go out together (psycopg's pipeline mode): a page of orders,
        its fence check and its checkpoint cost a round trip or two, not one per statement. A fence check
        that fails inside raises :class:`~channel_core.errors.FencedOutError` before the commit.
        """
        import psycopg
        from psycopg.pq import TransactionStatus

        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._depth = 1
            try:
                # BEGIN and COMMIT as plain statements on the autocommit connection: psycopg's own transaction
                # block would sync the pipeline after BEGIN and before COMMIT (two more round trips).
                with self._db.pipeline():
                    self._db.execute("BEGIN")
                    yield
                    self._db.execute("COMMIT")
            except psycopg.Error as exc:
                raise _fenced_out(exc) or exc from None
            finally:
                self._depth = 0
                if self._db.info.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
                    with suppress(psycopg.Error):  # the block raised: nothing of it is kept
                        self._db.execute("ROLLBACK")

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement on this store's connection (its schema); the rows it returns, if any.

        For the modules built on the same tables (:mod:`channel_core.fleet`) and a host's own reports;
        inside :meth:`transaction` it joins that transaction.
        """
        with self._lock:
            cursor = self._db.execute(sql, params)
            return list(cursor.fetchall()) if cursor.description is not None else []

    def _one(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> Any:
        with self._lock:
            return self._db.execute(sql, params).fetchone()

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # ------------------------------------------------------------------ checkpoints

    def load_checkpoint(self, channel: str, account_id: str) -> Checkpoint | None:
        row = self._one(
            "SELECT next_start, complete_until, cursor, cursor_since, clock_lag FROM checkpoints "
            "WHERE channel=%s AND account_id=%s",
            (channel, account_id),
        )
        if row is None:
            return None
        return Checkpoint(row[0], row[1], row[2], row[3], timedelta(seconds=row[4] or 0.0))

    def save_checkpoint(
        self, channel: str, account_id: str, checkpoint: Checkpoint, *, fence: int | None = None
    ) -> None:
        import psycopg

        params = {
            "c": channel,
            "a": account_id,
            "next_start": checkpoint.next_start,
            "complete_until": checkpoint.complete_until,
            "cursor": checkpoint.cursor,
            "cursor_since": checkpoint.cursor_since,
            "now": _now(),
            "lag": checkpoint.clock_lag.total_seconds(),
            "fence": fence,
        }
        if fence is None:
            with self.transaction():
                self._db.execute(_SAVE_CHECKPOINT, params)
            return
        # one statement, so atomic without BEGIN and COMMIT: the fence check (which raises) feeds the upsert
        try:
            with self._lock:
                self._db.execute(_SAVE_CHECKPOINT_FENCED, params)
        except psycopg.Error as exc:
            raise _fenced_out(exc) or exc from None

    def take_fence(self, channel: str, account_id: str) -> int:
        row = self._one(
            "INSERT INTO fences VALUES (%s,%s,1) ON CONFLICT (channel, account_id) "
            "DO UPDATE SET fence=fences.fence+1 RETURNING fence",
            (channel, account_id),
        )
        return int(row[0])

    def check_fence(self, channel: str, account_id: str, fence: int) -> None:
        import psycopg

        # FOR SHARE inside the function: a take_fence waits for this page's transaction, never slips inside
        # it. Inside a transaction the result is not read: a mismatch raises when the pipeline syncs.
        try:
            self._db.execute("SELECT channel_check_fence(%s, %s, %s)", (channel, account_id, fence))
        except psycopg.Error as exc:
            raise _fenced_out(exc) or exc from None

    def begin_run(
        self, channel: str, account_id: str, *, now: datetime, previous_account_ids: Sequence[str] = ()
    ) -> RunStart:
        previous = [old for old in previous_account_ids if (channel, old, account_id) not in self._pool.adopted]
        row = self._one(
            "WITH f AS (INSERT INTO fences VALUES (%(c)s, %(a)s, 1) ON CONFLICT (channel, account_id) "  # noqa: S608 - constant fragments
            "DO UPDATE SET fence = fences.fence + 1 RETURNING fence) "
            "SELECT f.fence, k.next_start, k.complete_until, k.cursor, k.cursor_since, k.clock_lag, "
            "k.channel IS NOT NULL, ARRAY(SELECT order_id FROM failed WHERE channel = %(c)s AND account_id = %(a)s "
            "AND NOT parked AND (next_attempt IS NULL OR next_attempt <= %(now)s) ORDER BY order_id), "
            f"ARRAY(SELECT old FROM unnest(%(previous)s::text[]) AS old WHERE {_held_under('old')}) "
            "FROM f LEFT JOIN checkpoints k ON k.channel = %(c)s AND k.account_id = %(a)s",
            {"c": channel, "a": account_id, "now": now, "previous": previous},
        )
        fence, next_start, complete_until, cursor, cursor_since, clock_lag, found, failed, adopt = row
        checkpoint = (
            Checkpoint(next_start, complete_until, cursor, cursor_since, timedelta(seconds=clock_lag or 0.0))
            if found
            else None
        )
        for old in previous:
            if old not in adopt:  # nothing left under it: this process need not look again
                self._pool.adopted.add((channel, old, account_id))
        return RunStart(int(fence), checkpoint, tuple(failed), tuple(adopt))

    # ------------------------------------------------------------------ orders

    def known_version(self, channel: str, account_id: str, order_id: str) -> str | None:
        return self.known_versions(channel, account_id, [order_id]).get(order_id)

    def known_versions(self, channel: str, account_id: str, order_ids: Sequence[str]) -> dict[str, str]:
        if not order_ids:
            return {}
        rows = self._all(
            "SELECT v.order_id, v.version FROM versions v WHERE v.channel=%(c)s AND v.account_id=%(a)s "
            "AND v.order_id = ANY(%(o)s) AND NOT EXISTS (SELECT 1 FROM failed f WHERE f.channel=%(c)s "
            "AND f.account_id=%(a)s AND f.order_id=v.order_id AND NOT f.parked)",
            {"c": channel, "a": account_id, "o": list(order_ids)},  # type: ignore[arg-type]
        )
        return {str(order_id): str(version) for order_id, version in rows}

    def save_version(self, channel: str, account_id: str, order_id: str, version: str) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT INTO versions VALUES (%s,%s,%s,%s) ON CONFLICT (channel, account_id, order_id) "
                "DO UPDATE SET version=EXCLUDED.version",
                (channel, account_id, order_id, version),
            )

    def save_order(self, account_id: str, order: Order, version: str | None) -> str:
        return self.save_orders(account_id, [(order, version)])[0]

    def save_orders(self, account_id: str, orders: Sequence[tuple[Order, str | None]]) -> list[str]:
        """A page in one statement (one array per column) when its orders are distinct and of one channel;
        else one statement per order, all in one pipeline. Either way one round trip."""
        if not orders:
            return []
        now = _now()
        rows = []
        for order, version in orders:
            data = canonical_json(order)
            rows.append((order, version, data, fingerprint_of(data)))
        ids = [order.order_id for order, *_ in rows]
        channels = {order.channel for order, *_ in rows}
        if len(set(ids)) == len(ids) and len(channels) == 1:
            page = {
                "c": channels.pop(),
                "a": account_id,
                "o": ids,
                "number": [order.order_number for order, *_ in rows],
                "status": [order.status.value for order, *_ in rows],
                "modified": [order.modified_at for order, *_ in rows],
                "digest": [digest for *_, digest in rows],
                "data": [data for *_, data, _ in rows],
                "version": [version for _, version, *_ in rows],
                "now": now,
            }
            with self.transaction(), self._lock:
                stored = dict(self._db.execute(_SAVE_PAGE, page).fetchall())
            return [
                WriteOutcome.INSERTED
                if (before := stored.get(order.order_id)) is None
                else WriteOutcome.UNCHANGED
                if before == digest
                else WriteOutcome.UPDATED
                for order, _, _, digest in rows
            ]
        params = [
            {
                "c": order.channel,
                "a": account_id,
                "o": order.order_id,
                "number": order.order_number,
                "status": order.status.value,
                "modified": order.modified_at,
                "digest": digest,
                "data": data,
                "now": now,
                "version": version,
            }
            for order, version, data, digest in rows
        ]
        with self.transaction(), self._lock:  # one pipeline: every order of the page in one round trip
            cursor = self._db.cursor()
            cursor.executemany(_SAVE_ORDER, params, returning=True)
            previous: list[str | None] = []
            while True:
                row = cursor.fetchone()
                previous.append(row[0] if row is not None else None)
                if not cursor.nextset():
                    break
        outcomes = []
        for before, values in zip(previous, params, strict=True):
            if before is None:
                outcomes.append(WriteOutcome.INSERTED)
            else:
                outcomes.append(WriteOutcome.UNCHANGED if before == values["digest"] else WriteOutcome.UPDATED)
        return outcomes

    def save_skipped(self, channel: str, account_id: str, order_id: str, reason: str, version: str | None) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT INTO skipped VALUES (%s,%s,%s,%s,%s) ON CONFLICT (channel, account_id, order_id) "
                "DO UPDATE SET reason=EXCLUDED.reason, seen_at=EXCLUDED.seen_at",
                (channel, account_id, order_id, reason, _now()),
            )
            self.clear_failed(channel, account_id, order_id)
            if version is not None:
                self.save_version(channel, account_id, order_id, version)

    def save_failed(
        self,
        channel: str,
        account_id: str,
        order_id: str,
        error: str,
        *,
        now: datetime,
        max_attempts: int,
        version: str | None = None,
    ) -> FailedOrderRecord:
        key = (channel, account_id, order_id)
        with self.transaction():
            row = self._db.execute(
                "SELECT attempts FROM failed WHERE channel=%s AND account_id=%s AND order_id=%s FOR UPDATE", key
            ).fetchone()
            attempts, next_attempt, parked = failed_attempt(row[0] if row is not None else 0, now, max_attempts)
            self._db.execute(
                "INSERT INTO failed VALUES (%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (channel, account_id, order_id) "
                "DO UPDATE SET error=EXCLUDED.error, attempts=EXCLUDED.attempts, last_seen=EXCLUDED.last_seen, "
                "next_attempt=EXCLUDED.next_attempt, parked=EXCLUDED.parked",
                (*key, error, attempts, now, next_attempt, parked),
            )
            if version is not None:  # known_version hides it until the order is parked
                self.save_version(*key, version)
        return FailedOrderRecord(channel, account_id, order_id, error, attempts, now, next_attempt, parked)

    def clear_failed(self, channel: str, account_id: str, order_id: str) -> None:
        with self.transaction():
            self._db.execute(
                "DELETE FROM failed WHERE channel=%s AND account_id=%s AND order_id=%s", (channel, account_id, order_id)
            )

    def failed_order_ids(self, channel: str, account_id: str, *, now: datetime | None = None) -> Sequence[str]:
        rows = self._all(
            "SELECT order_id FROM failed WHERE channel=%s AND account_id=%s AND NOT parked "
            "AND (%s::timestamptz IS NULL OR next_attempt IS NULL OR next_attempt <= %s::timestamptz) "
            "ORDER BY order_id",
            (channel, account_id, now, now),
        )
        return [r[0] for r in rows]

    def failed_orders(self, channel: str | None = None) -> list[FailedOrderRecord]:
        rows = self._all(
            "SELECT channel, account_id, order_id, error, attempts, last_seen, coalesce(next_attempt, last_seen), "
            "parked FROM failed WHERE %s::text IS NULL OR channel=%s ORDER BY channel, account_id, order_id",
            (channel, channel),
        )
        return [FailedOrderRecord(*row) for row in rows]

    def retry_failed(self, channel: str, account_id: str | None, order_id: str | None) -> int:
        with self.transaction():
            cursor = self._db.execute(
                "UPDATE failed SET attempts=0, parked=FALSE, next_attempt=NULL WHERE channel=%s "
                "AND (%s::text IS NULL OR account_id=%s) AND (%s::text IS NULL OR order_id=%s)",
                (channel, account_id, account_id, order_id, order_id),
            )
        return int(cursor.rowcount)

    def skipped(self, channel: str | None = None) -> list[tuple[str, str, str]]:
        rows = self._all(
            "SELECT channel, order_id, reason FROM skipped WHERE %s::text IS NULL OR channel=%s ORDER BY order_id",
            (channel, channel),
        )
        return [(r[0], r[1], r[2]) for r in rows]

    def _stored(self, row: Sequence[Any]) -> StoredOrder:
        account_id, fingerprint, data, imported_at, updated_at = row
        return StoredOrder(from_dict(Order, data), fingerprint, imported_at, updated_at, account_id)

    def iter_orders(self, channel: str | None = None) -> Iterator[StoredOrder]:
        rows = self._all(
            "SELECT account_id, fingerprint, data, imported_at, updated_at FROM orders "
            "WHERE %s::text IS NULL OR channel=%s ORDER BY modified_at, order_id",
            (channel, channel),
        )
        for row in rows:
            yield self._stored(row)

    def count_orders(self, channel: str | None = None) -> int:
        row = self._one("SELECT count(*) FROM orders WHERE %s::text IS NULL OR channel=%s", (channel, channel))
        return int(row[0])

    def get_order(self, channel: str, order_id: str, account_id: str | None = None) -> StoredOrder | None:
        rows = self._all(
            "SELECT account_id, fingerprint, data, imported_at, updated_at FROM orders WHERE channel=%s "
            "AND order_id=%s AND (%s::text IS NULL OR account_id=%s) LIMIT 2",
            (channel, order_id, account_id, account_id),
        )
        if len(rows) > 1:
            accounts = ", ".join(sorted(r[0] for r in rows))
            raise ValueError(f"order {order_id} of {channel} exists in several accounts ({accounts}); pass account_id")
        return self._stored(rows[0]) if rows else None

    # ------------------------------------------------------------------ notifications

    _NOTIFICATION_COLUMNS = (
        "notification_id, channel, account_id, shipment, status, fields_sent, message, attempts, "
        "next_attempt, updated_at"
    )

    def _record(self, row: Sequence[Any]) -> NotificationRecord:
        nid, channel, account_id, shipment, status, fields_sent, message, attempts, next_attempt, updated_at = row
        return NotificationRecord(
            nid,
            channel,
            account_id,
            from_dict(Shipment, shipment),
            status,
            tuple(fields_sent),
            message,
            attempts,
            next_attempt,
            updated_at,
        )

    def get_notification(self, notification_id: str) -> NotificationRecord | None:
        row = self._one(
            f"SELECT {self._NOTIFICATION_COLUMNS} FROM notifications WHERE notification_id=%s",  # noqa: S608 - a constant
            (notification_id,),
        )
        return self._record(row) if row is not None else None

    def save_notification(self, record: NotificationRecord) -> None:
        now = _now()
        with self.transaction():
            self._db.execute(
                "INSERT INTO notifications (notification_id, channel, account_id, order_id, shipment, status, "
                "fields_sent, message, attempts, created_at, updated_at, next_attempt) "
                "VALUES (%s,%s,%s,%s,%s::jsonb,%s,%s::jsonb,%s,%s,coalesce(%s, clock_timestamp()),%s,%s) "
                "ON CONFLICT (notification_id) DO UPDATE SET status=EXCLUDED.status, "
                "fields_sent=EXCLUDED.fields_sent, message=EXCLUDED.message, attempts=EXCLUDED.attempts, "
                "updated_at=EXCLUDED.updated_at, next_attempt=EXCLUDED.next_attempt",
                (
                    record.notification_id,
                    record.channel,
                    record.account_id,
                    record.shipment.order_id,
                    json.dumps(to_dict(record.shipment), sort_keys=True),
                    record.status,
                    json.dumps(list(record.fields_sent)),
                    record.message,
                    record.attempts,
                    record.created_at,
                    now,
                    record.next_attempt,
                ),
            )

    def record_result(self, notification_id: str, result: NotificationResult) -> None:
        with self.transaction():
            self._db.execute(
                "UPDATE notifications SET status=%s, fields_sent=%s::jsonb, message=%s, updated_at=%s "
                "WHERE notification_id=%s",
                (result.status.value, json.dumps(list(result.fields_sent)), result.message, _now(), notification_id),
            )

    def pending_notifications(
        self, channel: str, account_id: str, *, now: datetime | None = None
    ) -> Sequence[NotificationRecord]:
        rows = self._all(
            f"SELECT {self._NOTIFICATION_COLUMNS} FROM notifications WHERE channel=%s AND account_id=%s "  # noqa: S608
            "AND status IN ('pending', 'failed') AND (%s::timestamptz IS NULL OR next_attempt IS NULL "
            "OR next_attempt <= %s::timestamptz) ORDER BY created_at",
            (channel, account_id, now, now),
        )
        return [self._record(r) for r in rows]

    def notifications(self, statuses: Sequence[str] | None = None) -> list[NotificationRecord]:
        rows = self._all(f"SELECT {self._NOTIFICATION_COLUMNS} FROM notifications ORDER BY created_at")  # noqa: S608
        records = [self._record(r) for r in rows]
        return [r for r in records if statuses is None or r.status in statuses]

    def claim_order(
        self,
        channel: str,
        account_id: str,
        order_id: str,
        owner: str,
        *,
        now: datetime | None = None,
        lease: timedelta,
    ) -> bool:
        row = self._one(  # one statement on the database's clock: atomic across every worker and machine
            "WITH t AS (SELECT coalesce(%(now)s::timestamptz, clock_timestamp()) AS now) "
            "INSERT INTO notification_claims SELECT %(c)s, %(a)s, %(o)s, %(owner)s, t.now + %(lease)s FROM t "
            "ON CONFLICT (channel, account_id, order_id) DO UPDATE SET owner=EXCLUDED.owner, "
            "expires_at=EXCLUDED.expires_at WHERE notification_claims.owner=EXCLUDED.owner "
            "OR notification_claims.expires_at <= (SELECT now FROM t) RETURNING owner",
            {"now": now, "c": channel, "a": account_id, "o": order_id, "owner": owner, "lease": lease},
        )
        return row is not None

    def renew_claim(
        self,
        channel: str,
        account_id: str,
        order_id: str,
        owner: str,
        *,
        now: datetime | None = None,
        lease: timedelta,
    ) -> bool:
        rows = self.execute(
            "UPDATE notification_claims SET expires_at=coalesce(%s::timestamptz, clock_timestamp()) + %s "
            "WHERE channel=%s AND account_id=%s AND order_id=%s AND owner=%s RETURNING 1",
            (now, lease, channel, account_id, order_id, owner),
        )
        return bool(rows)

    def order_notifications(self, channel: str, account_id: str, order_id: str) -> list[NotificationRecord]:
        rows = self._all(
            f"SELECT {self._NOTIFICATION_COLUMNS} FROM notifications "  # noqa: S608 - a constant
            "WHERE channel=%s AND account_id=%s AND order_id=%s ORDER BY created_at, seq",
            (channel, account_id, order_id),
        )
        return [self._record(r) for r in rows]

    def release_order(self, channel: str, account_id: str, order_id: str, owner: str) -> None:
        with self.transaction():
            self._db.execute(
                "DELETE FROM notification_claims WHERE channel=%s AND account_id=%s AND order_id=%s AND owner=%s",
                (channel, account_id, order_id, owner),
            )

    def adopt_account(self, channel: str, old_account_id: str, account_id: str) -> int:
        move = (channel, old_account_id, account_id)
        if move in self._pool.adopted:  # done (or nothing to do) once in this process: no statement at all
            return 0
        found = self._one(f"SELECT {_held_under('%(a)s')}", {"c": channel, "a": old_account_id})
        moved = self._adopt(channel, old_account_id, account_id) if found and found[0] else 0
        self._pool.adopted.add(move)
        # rows now live under account_id: a memo that it holds none (as someone's previous id) is stale
        self._pool.adopted -= {m for m in self._pool.adopted if m[0] == channel and m[1] == account_id}
        return moved

    def _adopt(self, channel: str, old_account_id: str, account_id: str) -> int:
        keys = {
            "orders": "order_id",
            "versions": "order_id",
            "skipped": "order_id",
            "failed": "order_id",
            "checkpoints": None,
            "fences": None,
            "notification_claims": "order_id",
        }
        with self.transaction():
            row = self._db.execute(
                "SELECT count(*) FROM orders WHERE channel=%s AND account_id=%s", (channel, old_account_id)
            ).fetchone()
            for table in ACCOUNT_TABLES:
                same = f" AND n.{keys[table]} = t.{keys[table]}" if keys[table] else ""
                self._db.execute(
                    f"UPDATE {table} t SET account_id=%(new)s WHERE channel=%(c)s AND account_id=%(old)s "  # noqa: S608
                    f"AND NOT EXISTS (SELECT 1 FROM {table} n WHERE n.channel=%(c)s AND n.account_id=%(new)s{same})",
                    {"new": account_id, "c": channel, "old": old_account_id},
                )
                self._db.execute(
                    f"DELETE FROM {table} WHERE channel=%s AND account_id=%s",  # noqa: S608 - constant names
                    (channel, old_account_id),
                )
            for record in [
                self._record(r)
                for r in self._db.execute(
                    f"SELECT {self._NOTIFICATION_COLUMNS} FROM notifications "  # noqa: S608
                    "WHERE channel=%s AND account_id=%s ORDER BY seq",
                    (channel, old_account_id),
                ).fetchall()
            ]:
                self._db.execute(
                    "UPDATE notifications SET notification_id=%s, account_id=%s WHERE notification_id=%s "
                    "AND NOT EXISTS (SELECT 1 FROM notifications WHERE notification_id=%s)",
                    (
                        notification_id(channel, account_id, record.shipment),
                        account_id,
                        record.notification_id,
                        notification_id(channel, account_id, record.shipment),
                    ),
                )
            self._db.execute("DELETE FROM notifications WHERE channel=%s AND account_id=%s", (channel, old_account_id))
            self._db.execute(
                "UPDATE sync_runs SET account_id=%s WHERE channel=%s AND account_id=%s",
                (account_id, channel, old_account_id),
            )
        return int(row[0]) if row else 0

    def mark_shipped(self, channel: str, account_id: str, order_id: str) -> bool:
        key = (channel, account_id, order_id)
        with self.transaction():
            row = self._db.execute(
                "SELECT data FROM orders WHERE channel=%s AND account_id=%s AND order_id=%s FOR UPDATE", key
            ).fetchone()
            if row is None:
                return False
            self._db.execute("DELETE FROM versions WHERE channel=%s AND account_id=%s AND order_id=%s", key)
            data = dict(row[0])
            if data.get("status") == "shipped":
                return True
            data["status"] = "shipped"
            payload = canonical_json(from_dict(Order, data))
            self._db.execute(
                "UPDATE orders SET status='shipped', data=%s::jsonb, fingerprint=%s, updated_at=%s "
                "WHERE channel=%s AND account_id=%s AND order_id=%s",
                (payload, fingerprint_of(payload), _now(), *key),
            )
        return True

    # ------------------------------------------------------------------ run history

    # ------------------------------------------------------------------ webhook events (metadata, never bodies)

    def record_webhook_event(self, channel: str, store: str, event: WebhookEvent, received_at: datetime) -> bool:
        """Remember a verified delivery's event; ``False`` when the same event was already recorded (a replay)."""
        rows = self.execute(
            "INSERT INTO webhook_events (channel, store, event_id, topic, account_id, order_ids, received_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
            (
                channel,
                store,
                event.event_id,
                event.topic,
                event.account_id,
                json.dumps([*event.order_ids, *event.lookups]),
                received_at,
            ),
        )
        return bool(rows)

    def pending_webhook_events(self, channel: str, store: str) -> list[tuple[str, list[str]]]:
        rows = self.execute(
            "SELECT event_id, order_ids FROM webhook_events WHERE channel = %s AND store = %s AND done_at IS NULL "
            "ORDER BY received_at, event_id",
            (channel, store),
        )
        return [(str(event_id), list(ids)) for event_id, ids in rows]

    def finish_webhook_events(self, channel: str, store: str, event_ids: Sequence[str]) -> None:
        self.execute(
            "UPDATE webhook_events SET done_at = clock_timestamp() WHERE channel = %s AND store = %s "
            "AND event_id = ANY(%s)",
            (channel, store, list(event_ids)),
        )

    def webhook_events(self, channel: str | None = None) -> list[dict[str, Any]]:
        rows = self.execute(
            "SELECT channel, store, event_id, topic, account_id, order_ids, received_at, done_at FROM webhook_events "
            "WHERE %s::text IS NULL OR channel = %s ORDER BY received_at DESC",
            (channel, channel),
        )
        names = ("channel", "store", "event_id", "topic", "account_id", "order_ids", "received_at", "done_at")
        return [dict(zip(names, row, strict=True)) for row in rows]

    def record_run(
        self, channel: str, account_id: str, summary: Mapping[str, Any], store_key: str | None = None
    ) -> None:
        """Keep one run's summary (``ImportSummary.as_dict()``) in ``sync_runs``."""
        with self.transaction():
            self._db.execute(
                "INSERT INTO sync_runs (channel, account_id, store_key, finished_at, stopped, summary) "
                "VALUES (%s,%s,%s,%s,%s,%s::jsonb)",
                (channel, account_id, store_key, _now(), summary.get("stopped"), json.dumps(summary, default=str)),
            )

    def roll_up_runs(self, older_than: timedelta) -> int:
        """Fold runs that finished more than ``older_than`` ago into per-store daily totals (``daily_runs``),
        except each store's latest run; how many runs were folded. One statement: a run is counted once."""
        rows = self.execute(
            "WITH latest AS (SELECT DISTINCT ON (channel, account_id, store_key) id FROM sync_runs "
            "  ORDER BY channel, account_id, store_key, finished_at DESC, id DESC), "
            "old AS (DELETE FROM sync_runs r WHERE r.finished_at < now() - %s "
            "  AND r.id NOT IN (SELECT id FROM latest) "
            "  RETURNING channel, account_id, coalesce(store_key, '') AS store_key, "
            "  (finished_at AT TIME ZONE 'UTC')::date AS day, stopped, finished_at, id, summary), "
            "folded AS (INSERT INTO sync_runs_daily AS d SELECT channel, account_id, store_key, day, count(*), "
            "  count(*) FILTER (WHERE stopped IS NULL), "
            "  coalesce(sum((summary->>'imported')::bigint), 0), coalesce(sum((summary->>'updated')::bigint), 0), "
            "  coalesce(sum((summary->>'failed')::bigint), 0), "
            "  (array_agg(stopped ORDER BY finished_at DESC, id DESC))[1] "
            "  FROM old GROUP BY channel, account_id, store_key, day "
            "  ON CONFLICT (store_key, day, channel, account_id) DO UPDATE SET runs = d.runs + EXCLUDED.runs, "
            "  completed = d.completed + EXCLUDED.completed, imported = d.imported + EXCLUDED.imported, "
            "  updated = d.updated + EXCLUDED.updated, failed = d.failed + EXCLUDED.failed, "
            "  last_stopped = EXCLUDED.last_stopped RETURNING runs) "
            "SELECT count(*) FROM old",
            (older_than,),
        )
        return int(rows[0][0])

    def prune_daily_runs(self, older_than: timedelta) -> int:
        """Forget daily totals of days more than ``older_than`` ago; how many rows."""
        rows = self.execute("DELETE FROM sync_runs_daily WHERE day < (now() - %s)::date RETURNING 1", (older_than,))
        return len(rows)

    def daily_runs(self, store_key: str | None = None, *, days: int = 30) -> list[dict[str, Any]]:
        """Per-store daily totals of the runs rolled up by :meth:`roll_up_runs`, newest day first."""
        rows = self._all(
            "SELECT store_key, channel, account_id, day, runs, completed, imported, updated, failed, last_stopped "
            "FROM sync_runs_daily WHERE (%s::text IS NULL OR store_key = %s) AND day >= (now() - %s)::date "
            "ORDER BY day DESC, store_key",
            (store_key, store_key, timedelta(days=days)),
        )
        keys = ("store_key", "channel", "account_id", "day", "runs", "completed", "imported", "updated", "failed",
                "last_stopped")  # fmt: skip
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def runs(self, channel: str | None = None, account_id: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """The latest runs, newest first: what a host shows its users as a store's history."""
        rows = self._all(
            "SELECT channel, account_id, store_key, finished_at, stopped, summary FROM sync_runs "
            "WHERE (%s::text IS NULL OR channel=%s) AND (%s::text IS NULL OR account_id=%s) "
            "ORDER BY finished_at DESC, id DESC LIMIT %s",
            (channel, channel, account_id, account_id, limit),
        )
        keys = ("channel", "account_id", "store_key", "finished_at", "stopped", "summary")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def latest_shipments(self, channel: str | None = None) -> dict[tuple[str, str, str], Shipment]:
        rows = self._all(
            "SELECT channel, account_id, order_id, shipment FROM notifications "
            "WHERE status IN ('sent', 'already_sent') AND (%s::text IS NULL OR channel=%s) ORDER BY updated_at",
            (channel, channel),
        )
        return {(r[0], r[1], r[2]): from_dict(Shipment, r[3]) for r in rows}
