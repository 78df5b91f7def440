"""The embedded default store: one SQLite file (stdlib ``sqlite3``, WAL, versioned schema).

Orders are stored as their canonical JSON (exactly the model's snake_case
names) beside the columns the engine queries. The schema version lives in
``PRAGMA user_version``; opening a newer database than this code knows fails clearly.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from channel_core.errors import ConfigurationError, FencedOutError
from channel_core.hooktypes import WebhookEvent
from channel_core.models import NotificationResult, Order, Shipment, from_dict, to_dict
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

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]

SCHEMA_VERSION = 4
SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    channel TEXT NOT NULL,
    account_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    order_number TEXT NOT NULL,
    status TEXT NOT NULL,
    modified_at TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    data TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (channel, account_id, order_id)
);
CREATE TABLE IF NOT EXISTS versions (
    channel TEXT NOT NULL,
    account_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    version TEXT NOT NULL,
    PRIMARY KEY (channel, account_id, order_id)
);
CREATE TABLE IF NOT EXISTS skipped (
    channel TEXT NOT NULL,
    account_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    PRIMARY KEY (channel, account_id, order_id)
);
CREATE TABLE IF NOT EXISTS failed (
    channel TEXT NOT NULL,
    account_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    error TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    last_seen TEXT NOT NULL,
    next_attempt TEXT,
    parked INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (channel, account_id, order_id)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    channel TEXT NOT NULL,
    account_id TEXT NOT NULL,
    next_start TEXT,
    cursor TEXT,
    cursor_since TEXT,
    updated_at TEXT NOT NULL,
    complete_until TEXT,
    clock_lag REAL,
    PRIMARY KEY (channel, account_id)
);
CREATE TABLE IF NOT EXISTS notifications (
    notification_id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    account_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    shipment TEXT NOT NULL,
    status TEXT NOT NULL,
    fields_sent TEXT NOT NULL,
    message TEXT,
    attempts INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    next_attempt TEXT
);
CREATE TABLE IF NOT EXISTS fences (
    channel TEXT NOT NULL,
    account_id TEXT NOT NULL,
    fence INTEGER NOT NULL,
    PRIMARY KEY (channel, account_id)
);
CREATE TABLE IF NOT EXISTS notification_claims (
    channel TEXT NOT NULL,
    account_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    PRIMARY KEY (channel, account_id, order_id)
);
CREATE TABLE IF NOT EXISTS webhook_events (
    channel TEXT NOT NULL,
    store TEXT NOT NULL,
    event_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    account_id TEXT NOT NULL,
    order_ids TEXT NOT NULL,
    received_at TEXT NOT NULL,
    done_at TEXT,
    PRIMARY KEY (channel, store, event_id)
);
"""
# Each step takes a database from version N to N + 1.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "ALTER TABLE failed ADD COLUMN next_attempt TEXT",
        "ALTER TABLE failed ADD COLUMN parked INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE checkpoints ADD COLUMN complete_until TEXT",
        "ALTER TABLE notifications ADD COLUMN next_attempt TEXT",
        "CREATE TABLE notification_claims (channel TEXT NOT NULL, account_id TEXT NOT NULL, order_id TEXT NOT NULL, "
        "owner TEXT NOT NULL, expires_at TEXT NOT NULL, PRIMARY KEY (channel, account_id, order_id))",
        "CREATE TABLE fences (channel TEXT NOT NULL, account_id TEXT NOT NULL, fence INTEGER NOT NULL, "
        "PRIMARY KEY (channel, account_id))",
    ),
    2: ("ALTER TABLE checkpoints ADD COLUMN clock_lag REAL",),
    3: (
        "CREATE TABLE webhook_events (channel TEXT NOT NULL, store TEXT NOT NULL, event_id TEXT NOT NULL, "
        "topic TEXT NOT NULL, account_id TEXT NOT NULL, order_ids TEXT NOT NULL, received_at TEXT NOT NULL, "
        "done_at TEXT, PRIMARY KEY (channel, store, event_id))",
    ),
}


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class SQLiteStore:
    """An :class:`~channel_core.sync.store.OrderStore` in one SQLite file. Thread-safe."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.RLock()
        self._depth = 0
        # a long busy timeout: two processes claiming notifications wait for each other's short transactions
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=60.0)
        self._db.row_factory = sqlite3.Row
        self._open()

    def _open(self) -> None:
        """Set the journal mode and migrate. Several processes opening a new file at once can be told
        "database is locked" at once (SQLite refuses to wait where waiting could deadlock): try again."""
        deadline = time.monotonic() + 60.0
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute("PRAGMA foreign_keys=ON")
                self._migrate()
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise ConfigurationError(
                f"{self.path} uses schema version {version}, newer than this version of channel_core "
                f"({SCHEMA_VERSION}); upgrade the package"
            )
        if version == SCHEMA_VERSION:
            return
        with self.transaction():
            if version == 0:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
            else:
                for step in range(version, SCHEMA_VERSION):
                    for statement in MIGRATIONS[step]:
                        self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    # ------------------------------------------------------------------ webhook events (metadata, never bodies)

    def record_webhook_event(self, channel: str, store: str, event: WebhookEvent, received_at: datetime) -> bool:
        """Remember a verified delivery's event; ``False`` when the same event was already recorded (a replay)."""
        keys = [*event.order_ids, *event.lookups]
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO webhook_events (channel, store, event_id, topic, account_id, order_ids, "
                "received_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (channel, store, event.event_id, event.topic, event.account_id, json.dumps(keys), _iso(received_at)),
            )
            return cursor.rowcount == 1

    def pending_webhook_events(self, channel: str, store: str) -> list[tuple[str, list[str]]]:
        """Recorded events not yet applied, oldest first: ``(event id, order ids and lookups)``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT event_id, order_ids FROM webhook_events WHERE channel = ? AND store = ? AND done_at IS NULL "
                "ORDER BY received_at, event_id",
                (channel, store),
            ).fetchall()
        return [(row["event_id"], list(json.loads(row["order_ids"]))) for row in rows]

    def finish_webhook_events(self, channel: str, store: str, event_ids: Sequence[str]) -> None:
        with self._lock, self.transaction():
            for event_id in event_ids:
                self._db.execute(
                    "UPDATE webhook_events SET done_at = ? WHERE channel = ? AND store = ? AND event_id = ?",
                    (_now(), channel, store, event_id),
                )

    def webhook_events(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Every recorded event's metadata, newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM webhook_events WHERE ? IS NULL OR channel = ? ORDER BY received_at DESC",
                (channel, channel),
            ).fetchall()
        return [{**dict(row), "order_ids": json.loads(row["order_ids"])} for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            outer = self._depth == 0
            if outer:
                self._db.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if outer:
                    self._db.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                self._db.execute("COMMIT")

    # ------------------------------------------------------------------ checkpoints

    def load_checkpoint(self, channel: str, account_id: str) -> Checkpoint | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM checkpoints WHERE channel=? AND account_id=?", (channel, account_id)
            ).fetchone()
        if row is None:
            return None
        return Checkpoint(
            _dt(row["next_start"]),
            _dt(row["complete_until"]),
            row["cursor"],
            _dt(row["cursor_since"]),
            timedelta(seconds=row["clock_lag"] or 0.0),
        )

    def save_checkpoint(
        self, channel: str, account_id: str, checkpoint: Checkpoint, *, fence: int | None = None
    ) -> None:
        with self.transaction():
            if fence is not None:
                self.check_fence(channel, account_id, fence)
            self._db.execute(
                "INSERT INTO checkpoints (channel, account_id, next_start, complete_until, cursor, cursor_since, "
                "updated_at, clock_lag) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(channel, account_id) DO UPDATE SET "
                "next_start=excluded.next_start, complete_until=excluded.complete_until, cursor=excluded.cursor, "
                "cursor_since=excluded.cursor_since, updated_at=excluded.updated_at, clock_lag=excluded.clock_lag",
                (
                    channel,
                    account_id,
                    _iso(checkpoint.next_start),
                    _iso(checkpoint.complete_until),
                    checkpoint.cursor,
                    _iso(checkpoint.cursor_since),
                    _now(),
                    checkpoint.clock_lag.total_seconds(),
                ),
            )

    def take_fence(self, channel: str, account_id: str) -> int:
        with self.transaction():
            self._db.execute(
                "INSERT INTO fences VALUES (?,?,1) ON CONFLICT(channel, account_id) DO UPDATE SET fence=fence+1",
                (channel, account_id),
            )
            row = self._db.execute(
                "SELECT fence FROM fences WHERE channel=? AND account_id=?", (channel, account_id)
            ).fetchone()
        return int(row[0])

    def begin_run(
        self, channel: str, account_id: str, *, now: datetime, previous_account_ids: Sequence[str] = ()
    ) -> RunStart:
        with self.transaction():
            adopt = tuple(
                old
                for old in previous_account_ids
                if any(
                    self._db.execute(
                        f"SELECT 1 FROM {table} WHERE channel=? AND account_id=? LIMIT 1",  # noqa: S608 - constants
                        (channel, old),
                    ).fetchone()
                    for table in ROWS_OF_AN_ACCOUNT
                )
            )
            return RunStart(
                self.take_fence(channel, account_id),
                self.load_checkpoint(channel, account_id),
                tuple(self.failed_order_ids(channel, account_id, now=now)),
                adopt,
            )

    def check_fence(self, channel: str, account_id: str, fence: int) -> None:
        with self.transaction():
            row = self._db.execute(
                "SELECT fence FROM fences WHERE channel=? AND account_id=?", (channel, account_id)
            ).fetchone()
        if row is not None and int(row[0]) != fence:
            raise FencedOutError(
                f"another run of {channel} {account_id} took over (fence {row[0]}, this run {fence}); stopping"
            )

    # ------------------------------------------------------------------ orders

    def known_version(self, channel: str, account_id: str, order_id: str) -> str | None:
        return self.known_versions(channel, account_id, [order_id]).get(order_id)

    def known_versions(self, channel: str, account_id: str, order_ids: Sequence[str]) -> dict[str, str]:
        # an unparked failed order has no trusted version: it is fetched whenever it is listed;
        # a parked one waits for a change of its listed version
        found: dict[str, str] = {}
        with self._lock:
            for chunk in range(0, len(order_ids), 500):
                part = list(order_ids[chunk : chunk + 500])
                marks = ",".join("?" * len(part))
                found.update(
                    self._db.execute(
                        f"SELECT v.order_id, v.version FROM versions v WHERE v.channel=? AND v.account_id=? "  # noqa: S608
                        f"AND v.order_id IN ({marks}) AND NOT EXISTS (SELECT 1 FROM failed f WHERE "
                        "f.channel=v.channel AND f.account_id=v.account_id AND f.order_id=v.order_id AND f.parked=0)",
                        (channel, account_id, *part),
                    ).fetchall()
                )
        return found

    def save_version(self, channel: str, account_id: str, order_id: str, version: str) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT INTO versions VALUES (?,?,?,?) ON CONFLICT(channel, account_id, order_id) "
                "DO UPDATE SET version=excluded.version",
                (channel, account_id, order_id, version),
            )

    def save_order(self, account_id: str, order: Order, version: str | None) -> str:
        return self.save_orders(account_id, [(order, version)])[0]

    def save_orders(self, account_id: str, orders: Sequence[tuple[Order, str | None]]) -> list[str]:
        """A page's orders in a few statements whatever its length: one read of the stored fingerprints, then
        one batch each of upserts (changed orders only), cleared skip and failure records, and versions."""
        if not orders:
            return []
        now = _now()
        rows = []
        for order, version in orders:
            data = canonical_json(order)  # built once: it is both the stored row and what the fingerprint hashes
            rows.append((order, version, data, fingerprint_of(data)))
        outcomes: list[str] = []
        with self.transaction():
            stored: dict[tuple[str, str], str] = {}
            for channel in {order.channel for order, *_ in rows}:
                ids = [order.order_id for order, *_ in rows if order.channel == channel]
                for chunk in range(0, len(ids), 500):
                    part = ids[chunk : chunk + 500]
                    marks = ",".join("?" * len(part))
                    for order_id, digest in self._db.execute(
                        f"SELECT order_id, fingerprint FROM orders WHERE channel=? AND account_id=? "  # noqa: S608
                        f"AND order_id IN ({marks})",
                        (channel, account_id, *part),
                    ):
                        stored[channel, order_id] = digest
            changed = []
            for order, _, data, digest in rows:
                before = stored.get((order.channel, order.order_id))
                if before == digest:
                    outcomes.append(WriteOutcome.UNCHANGED)
                    continue
                outcomes.append(WriteOutcome.INSERTED if before is None else WriteOutcome.UPDATED)
                stored[order.channel, order.order_id] = digest  # an order twice in one page: its second is an update
                changed.append(
                    (
                        order.channel,
                        account_id,
                        order.order_id,
                        order.order_number,
                        order.status.value,
                        order.modified_at.isoformat(),
                        digest,
                        data,
                        now,
                        now,
                    )
                )
            self._db.executemany(
                "INSERT INTO orders VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(channel, account_id, order_id) DO UPDATE "
                "SET order_number=excluded.order_number, status=excluded.status, modified_at=excluded.modified_at, "
                "fingerprint=excluded.fingerprint, data=excluded.data, updated_at=excluded.updated_at",
                changed,
            )
            keys = [(order.channel, account_id, order.order_id) for order, *_ in rows]
            self._db.executemany("DELETE FROM skipped WHERE channel=? AND account_id=? AND order_id=?", keys)
            self._db.executemany("DELETE FROM failed WHERE channel=? AND account_id=? AND order_id=?", keys)
            self._db.executemany(
                "INSERT INTO versions VALUES (?,?,?,?) ON CONFLICT(channel, account_id, order_id) "
                "DO UPDATE SET version=excluded.version",
                [
                    (order.channel, account_id, order.order_id, version)
                    for order, version, *_ in rows
                    if version is not None
                ],
            )
        return outcomes

    def save_skipped(self, channel: str, account_id: str, order_id: str, reason: str, version: str | None) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT INTO skipped VALUES (?,?,?,?,?) ON CONFLICT(channel, account_id, order_id) DO UPDATE SET "
                "reason=excluded.reason, seen_at=excluded.seen_at",
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
                "SELECT attempts FROM failed WHERE channel=? AND account_id=? AND order_id=?", key
            ).fetchone()
            attempts, next_attempt, parked = failed_attempt(row[0] if row is not None else 0, now, max_attempts)
            self._db.execute(
                "INSERT INTO failed (channel, account_id, order_id, error, attempts, last_seen, next_attempt, parked) "
                "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(channel, account_id, order_id) DO UPDATE SET "
                "error=excluded.error, attempts=excluded.attempts, last_seen=excluded.last_seen, "
                "next_attempt=excluded.next_attempt, parked=excluded.parked",
                (*key, error, attempts, now.isoformat(), next_attempt.isoformat(), int(parked)),
            )
            if version is not None:  # known_version hides it until the order is parked
                self.save_version(channel, account_id, order_id, version)
        return FailedOrderRecord(channel, account_id, order_id, error, attempts, now, next_attempt, parked)

    def failed_orders(self, channel: str | None = None) -> list[FailedOrderRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM failed WHERE ?1 IS NULL OR channel=?1 ORDER BY channel, account_id, order_id",
                (channel,),
            ).fetchall()
        return [
            FailedOrderRecord(
                r["channel"],
                r["account_id"],
                r["order_id"],
                r["error"],
                r["attempts"],
                datetime.fromisoformat(r["last_seen"]),
                datetime.fromisoformat(r["next_attempt"] or r["last_seen"]),
                bool(r["parked"]),
            )
            for r in rows
        ]

    def retry_failed(self, channel: str, account_id: str | None, order_id: str | None) -> int:
        with self.transaction():
            cursor = self._db.execute(
                "UPDATE failed SET attempts=0, parked=0, next_attempt=NULL WHERE channel=?1 "
                "AND (?2 IS NULL OR account_id=?2) AND (?3 IS NULL OR order_id=?3)",
                (channel, account_id, order_id),
            )
        return int(cursor.rowcount)

    def clear_failed(self, channel: str, account_id: str, order_id: str) -> None:
        with self.transaction():
            self._db.execute(
                "DELETE FROM failed WHERE channel=? AND account_id=? AND order_id=?",
                (channel, account_id, order_id),
            )

    def failed_order_ids(self, channel: str, account_id: str, *, now: datetime | None = None) -> Sequence[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT order_id, next_attempt FROM failed WHERE channel=? AND account_id=? AND parked=0 "
                "ORDER BY order_id",
                (channel, account_id),
            ).fetchall()
        return [r[0] for r in rows if now is None or r[1] is None or datetime.fromisoformat(r[1]) <= now]

    def skipped(self, channel: str | None = None) -> list[tuple[str, str, str]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT channel, order_id, reason FROM skipped WHERE ?1 IS NULL OR channel=?1 ORDER BY order_id",
                (channel,),
            ).fetchall()
        return [(r[0], r[1], r[2]) for r in rows]

    def _stored(self, row: sqlite3.Row) -> StoredOrder:
        order = from_dict(Order, json.loads(row["data"]))
        return StoredOrder(
            order,
            row["fingerprint"],
            datetime.fromisoformat(row["imported_at"]),
            datetime.fromisoformat(row["updated_at"]),
            row["account_id"],
        )

    def iter_orders(self, channel: str | None = None) -> Iterator[StoredOrder]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM orders WHERE ?1 IS NULL OR channel=?1 ORDER BY modified_at, order_id",
                (channel,),
            ).fetchall()
        for row in rows:
            yield self._stored(row)

    def count_orders(self, channel: str | None = None) -> int:
        with self._lock:
            row = self._db.execute("SELECT COUNT(*) FROM orders WHERE ?1 IS NULL OR channel=?1", (channel,)).fetchone()
        return int(row[0])

    def get_order(self, channel: str, order_id: str, account_id: str | None = None) -> StoredOrder | None:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM orders WHERE channel=?1 AND order_id=?2 AND (?3 IS NULL OR account_id=?3) LIMIT 2",
                (channel, order_id, account_id),
            ).fetchall()
        if len(rows) > 1:
            accounts = ", ".join(sorted(r["account_id"] for r in rows))
            raise ValueError(f"order {order_id} of {channel} exists in several accounts ({accounts}); pass account_id")
        return self._stored(rows[0]) if rows else None

    # ------------------------------------------------------------------ notifications

    def _record(self, row: sqlite3.Row) -> NotificationRecord:
        return NotificationRecord(
            notification_id=row["notification_id"],
            channel=row["channel"],
            account_id=row["account_id"],
            shipment=from_dict(Shipment, json.loads(row["shipment"])),
            status=row["status"],
            fields_sent=tuple(json.loads(row["fields_sent"])),
            message=row["message"],
            attempts=row["attempts"],
            next_attempt=_dt(row["next_attempt"]),
            updated_at=_dt(row["updated_at"]),
        )

    def get_notification(self, notification_id: str) -> NotificationRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM notifications WHERE notification_id=?", (notification_id,)).fetchone()
        return self._record(row) if row is not None else None

    def save_notification(self, record: NotificationRecord) -> None:
        now = _now()
        with self.transaction():
            self._db.execute(
                "INSERT INTO notifications (notification_id, channel, account_id, order_id, shipment, status, "
                "fields_sent, message, attempts, created_at, updated_at, next_attempt) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(notification_id) DO UPDATE SET status=excluded.status, fields_sent=excluded.fields_sent, "
                "message=excluded.message, attempts=excluded.attempts, updated_at=excluded.updated_at, "
                "next_attempt=excluded.next_attempt",
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
                    _iso(record.created_at) or now,
                    now,
                    _iso(record.next_attempt),
                ),
            )

    def record_result(self, notification_id: str, result: NotificationResult) -> None:
        with self.transaction():
            self._db.execute(
                "UPDATE notifications SET status=?, fields_sent=?, message=?, updated_at=? WHERE notification_id=?",
                (
                    result.status.value,
                    json.dumps(list(result.fields_sent)),
                    result.message,
                    _now(),
                    notification_id,
                ),
            )

    def pending_notifications(
        self, channel: str, account_id: str, *, now: datetime | None = None
    ) -> Sequence[NotificationRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM notifications WHERE channel=? AND account_id=? AND status IN ('pending', 'failed') "
                "ORDER BY created_at",
                (channel, account_id),
            ).fetchall()
        records = [self._record(r) for r in rows]
        return [r for r in records if now is None or r.next_attempt is None or r.next_attempt <= now]

    def notifications(self, statuses: Sequence[str] | None = None) -> list[NotificationRecord]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM notifications ORDER BY created_at").fetchall()
        records = [self._record(r) for r in rows]
        return [r for r in records if statuses is None or r.status in statuses]

    def order_notifications(self, channel: str, account_id: str, order_id: str) -> list[NotificationRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM notifications WHERE channel=? AND account_id=? AND order_id=? "
                "ORDER BY created_at, rowid",
                (channel, account_id, order_id),
            ).fetchall()
        return [self._record(r) for r in rows]

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
        now = now or datetime.now(UTC)  # the database's clock: the file lives on this machine
        key = (channel, account_id, order_id)
        with self.transaction():  # BEGIN IMMEDIATE: one writer at a time, across processes too
            row = self._db.execute(
                "SELECT owner, expires_at FROM notification_claims WHERE channel=? AND account_id=? AND order_id=?",
                key,
            ).fetchone()
            if row is not None and row[0] != owner and datetime.fromisoformat(row[1]) > now:
                return False
            self._db.execute(
                "INSERT INTO notification_claims VALUES (?,?,?,?,?) ON CONFLICT(channel, account_id, order_id) "
                "DO UPDATE SET owner=excluded.owner, expires_at=excluded.expires_at",
                (*key, owner, (now + lease).isoformat()),
            )
        return True

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
        now = now or datetime.now(UTC)
        with self.transaction():
            cursor = self._db.execute(
                "UPDATE notification_claims SET expires_at=? WHERE channel=? AND account_id=? AND order_id=? "
                "AND owner=?",
                ((now + lease).isoformat(), channel, account_id, order_id, owner),
            )
            return cursor.rowcount == 1

    def release_order(self, channel: str, account_id: str, order_id: str, owner: str) -> None:
        with self.transaction():
            self._db.execute(
                "DELETE FROM notification_claims WHERE channel=? AND account_id=? AND order_id=? AND owner=?",
                (channel, account_id, order_id, owner),
            )

    def adopt_account(self, channel: str, old_account_id: str, account_id: str) -> int:
        with self.transaction():
            moved = self._db.execute(
                "SELECT count(*) FROM orders WHERE channel=? AND account_id=?", (channel, old_account_id)
            ).fetchone()[0]
            for table in ACCOUNT_TABLES:
                self._db.execute(
                    f"UPDATE OR IGNORE {table} SET account_id=? WHERE channel=? AND account_id=?",  # noqa: S608
                    (account_id, channel, old_account_id),
                )
                self._db.execute(
                    f"DELETE FROM {table} WHERE channel=? AND account_id=?",  # noqa: S608 - table names are constants
                    (channel, old_account_id),
                )
            rows = self._db.execute(
                "SELECT * FROM notifications WHERE channel=? AND account_id=? ORDER BY rowid", (channel, old_account_id)
            ).fetchall()
            for row in rows:
                record = self._record(row)
                new_id = notification_id(channel, account_id, record.shipment)
                self._db.execute(
                    "UPDATE OR IGNORE notifications SET notification_id=?, account_id=? WHERE notification_id=?",
                    (new_id, account_id, record.notification_id),
                )
            self._db.execute("DELETE FROM notifications WHERE channel=? AND account_id=?", (channel, old_account_id))
        return int(moved)

    def mark_shipped(self, channel: str, account_id: str, order_id: str) -> bool:
        with self.transaction():
            row = self._db.execute(
                "SELECT data FROM orders WHERE channel=? AND account_id=? AND order_id=?",
                (channel, account_id, order_id),
            ).fetchone()
            if row is None:
                return False
            self._db.execute(
                "DELETE FROM versions WHERE channel=? AND account_id=? AND order_id=?", (channel, account_id, order_id)
            )
            data = json.loads(row[0])
            if data.get("status") == "shipped":
                return True
            data["status"] = "shipped"
            order = from_dict(Order, data)
            payload = canonical_json(order)
            self._db.execute(
                "UPDATE orders SET status='shipped', data=?, fingerprint=?, updated_at=? "
                "WHERE channel=? AND account_id=? AND order_id=?",
                (
                    payload,
                    fingerprint_of(payload),
                    _now(),
                    channel,
                    account_id,
                    order_id,
                ),
            )
        return True

    def latest_shipments(self, channel: str | None = None) -> dict[tuple[str, str, str], Shipment]:
        """The last shipment each store accepted, by (channel, account, order id): what `channel orders` shows."""
        with self._lock:
            rows = self._db.execute(
                "SELECT channel, account_id, order_id, shipment FROM notifications "
                "WHERE status IN ('sent', 'already_sent') AND (?1 IS NULL OR channel=?1) ORDER BY updated_at",
                (channel,),
            ).fetchall()
        return {(r[0], r[1], r[2]): from_dict(Shipment, json.loads(r[3])) for r in rows}
