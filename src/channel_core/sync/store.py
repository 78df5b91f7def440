"""What the sync engine needs from storage, as a small interface, plus the records it keeps.

:class:`~channel_core.sync.sqlite.SQLiteStore` is the embedded default; a host
with its own database implements :class:`OrderStore` over it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from channel_core.models import NotificationResult, Order, Shipment, to_json

__all__ = [
    "ACCOUNT_TABLES",
    "ROWS_OF_AN_ACCOUNT",
    "Checkpoint",
    "FailedOrderRecord",
    "NotificationRecord",
    "NotificationState",
    "OrderStore",
    "RunStart",
    "StoredOrder",
    "WriteOutcome",
    "canonical_json",
    "failed_attempt",
    "failed_backoff",
    "fingerprint",
    "fingerprint_of",
    "notification_id",
    "notify_backoff",
    "package_key",
]


def canonical_json(order: Order) -> str:
    """The order's canonical JSON (sorted keys, compact): what stores keep and fingerprints hash."""
    return to_json(order)


def fingerprint_of(payload: str) -> str:
    return hashlib.sha256(payload.encode()).hexdigest()


def fingerprint(order: Order) -> str:
    """A digest of the canonical order: equal fingerprints mean nothing changed."""
    return fingerprint_of(canonical_json(order))


FAILED_BACKOFF_FIRST = timedelta(minutes=5)
FAILED_BACKOFF_MAX = timedelta(hours=6)


def failed_backoff(attempts: int) -> timedelta:
    """The wait before attempt ``attempts + 1`` of a failed order: the next run, then 5 min doubling to 6 h."""
    if attempts <= 1:
        return timedelta(0)
    wait: timedelta = FAILED_BACKOFF_FIRST * 2 ** (attempts - 2)
    return min(FAILED_BACKOFF_MAX, wait)


def failed_attempt(previous_attempts: int, now: datetime, max_attempts: int) -> tuple[int, datetime, bool]:
    """One more failed attempt: the new count, when to try next, and whether the order is now parked."""
    attempts = previous_attempts + 1
    return attempts, now + failed_backoff(attempts), attempts >= max_attempts


def package_key(shipment: Shipment) -> str:
    """Which parcel of its order a shipment is: ``package_id``, else its items, else the whole order.

    A newer shipment with the same order and package key supersedes an older one not yet sent.
    """
    if shipment.package_id:
        return f"package:{shipment.package_id.strip()}"
    if shipment.items:
        lines = sorted(f"{i.line_item_id or ''}/{i.sku or ''}/{i.quantity}" for i in shipment.items)
        return "items:" + ",".join(lines)
    return "order"


ACCOUNT_TABLES = ("orders", "versions", "skipped", "failed", "checkpoints", "fences", "notification_claims")
# where a store keeps rows worth adopting under an id an older release used (fences and claims are not)
ROWS_OF_AN_ACCOUNT = ("checkpoints", "orders", "notifications", "failed", "skipped", "versions")


def notification_id(channel: str, account_id: str, shipment: Shipment) -> str:
    """A stable id for a shipment notification: same order, tracking number, carrier, URL and items, same id.

    The items are part of it, so two packages of one order are two notifications, each sent once.
    """
    parts = [
        channel,
        account_id,
        shipment.order_id,
        shipment.tracking_number.strip(),
        shipment.carrier.strip(),
        (shipment.tracking_url or "").strip(),
    ]
    if shipment.items:  # shipments without items keep the ids earlier releases gave them
        parts.append(",".join(sorted(f"{i.line_item_id or ''}/{i.sku or ''}/{i.quantity}" for i in shipment.items)))
    key = "\x1f".join(parts)
    return hashlib.sha256(key.encode()).hexdigest()[:32]


class NotificationState:
    """Where a notification stands in the ledger."""

    PENDING = "pending"  # not sent yet, or the outcome of an attempt is unknown: retried with backoff
    SENT = "sent"
    ALREADY_SENT = "already_sent"  # the store showed this shipment before we wrote anything
    FAILED = "failed"  # the store refused it: retried with backoff, in case the cause is fixed
    PARKED = "parked"  # too many attempts: waits for `channel notifications retry`
    CANCELLED = "cancelled"  # an operator said never to send it

    DONE = frozenset({SENT, ALREADY_SENT})
    RETRIED = frozenset({PENDING, FAILED})


NOTIFY_BACKOFF_FIRST = timedelta(minutes=2)


def notify_backoff(attempts: int) -> timedelta:
    """The wait before attempt ``attempts + 1`` of a notification: the next run, then 2 min doubling to 6 h."""
    if attempts <= 1:
        return timedelta(0)
    wait: timedelta = NOTIFY_BACKOFF_FIRST * 2 ** (attempts - 2)
    return min(FAILED_BACKOFF_MAX, wait)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Where the next run starts.

    :ivar next_start: the start of the next window (``complete_until`` minus the margin).
    :ivar complete_until: every order modified before this instant (store clock) is stored
        with its current content; the next run passes it as ``OrderQuery.complete_until``.
    :ivar cursor: the channel's resume token, set while a window is only partly stored.
    :ivar cursor_since: the start of that partly stored window.
    :ivar clock_lag: the largest lag seen between the store's data stamps and its reply clock.
    """

    next_start: datetime | None
    complete_until: datetime | None = None
    cursor: str | None = None
    cursor_since: datetime | None = None
    clock_lag: timedelta = timedelta(0)


@dataclass(frozen=True, slots=True)
class FailedOrderRecord:
    """An order whose fetch failed: retried with backoff, parked after too many attempts."""

    channel: str
    account_id: str
    order_id: str
    error: str
    attempts: int
    last_seen: datetime
    next_attempt: datetime
    parked: bool


@dataclass(frozen=True, slots=True)
class StoredOrder:
    order: Order
    fingerprint: str
    imported_at: datetime
    updated_at: datetime
    account_id: str = ""


@dataclass(frozen=True, slots=True)
class NotificationRecord:
    notification_id: str
    channel: str
    account_id: str
    shipment: Shipment
    status: str  # a NotificationState value
    fields_sent: tuple[str, ...]
    message: str | None
    attempts: int
    next_attempt: datetime | None = None
    updated_at: datetime | None = None
    # the notification's place in the ledger: when the host asked for it (a queued job's enqueue time), set
    # once on the first save; later shipments of the same package supersede earlier ones by this order
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RunStart:
    """What a run needs from the store before it reads: its fence, the checkpoint, the failed orders due."""

    fence: int
    checkpoint: Checkpoint | None
    failed_order_ids: tuple[str, ...]
    adopt_from: tuple[str, ...] = ()  # of the previous account ids asked about, those that still hold rows


class WriteOutcome:
    INSERTED = "inserted"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


class OrderStore(Protocol):
    """Storage for imported orders, checkpoints and the notification ledger.

    Writes happen inside :meth:`transaction`; a page and its checkpoint are
    committed together or not at all.
    """

    def transaction(self) -> AbstractContextManager[None]: ...

    def load_checkpoint(self, channel: str, account_id: str) -> Checkpoint | None: ...

    def save_checkpoint(
        self, channel: str, account_id: str, checkpoint: Checkpoint, *, fence: int | None = None
    ) -> None:
        """Store the resume point. With ``fence``, atomically only while it is still the store's latest (else
        :class:`~channel_core.errors.FencedOutError` and nothing is written): :meth:`check_fence` and the
        save as one transaction, which on PostgreSQL is one statement."""
        ...

    def take_fence(self, channel: str, account_id: str) -> int:
        """Start a run of one store: a new fence value, higher than any taken before, atomically."""
        ...

    def check_fence(self, channel: str, account_id: str, fence: int) -> None:
        """Inside a page's transaction: raise :class:`~channel_core.errors.FencedOutError` when a later run
        of the same store has taken a fence since ``fence``. A store may raise it later in the same
        transaction (at its commit, at the latest), never after anything of it was committed."""
        ...

    def begin_run(
        self, channel: str, account_id: str, *, now: datetime, previous_account_ids: Sequence[str] = ()
    ) -> RunStart:
        """Start a run: :meth:`take_fence`, :meth:`load_checkpoint` and :meth:`failed_order_ids` due at
        ``now``, together (one round trip on PostgreSQL); ``adopt_from`` names those of
        ``previous_account_ids`` still holding rows (the caller adopts them, then begins again)."""
        ...

    def known_version(self, channel: str, account_id: str, order_id: str) -> str | None: ...

    def known_versions(self, channel: str, account_id: str, order_ids: Sequence[str]) -> dict[str, str]:
        """:meth:`known_version` of each of ``order_ids`` that has one, in one lookup."""
        ...

    def save_order(self, account_id: str, order: Order, version: str | None) -> str: ...

    def save_orders(self, account_id: str, orders: Sequence[tuple[Order, str | None]]) -> list[str]:
        """:meth:`save_order` for each (order, version) of a page, batched; the outcomes in the same order."""
        ...

    def save_version(self, channel: str, account_id: str, order_id: str, version: str) -> None: ...

    def save_skipped(self, channel: str, account_id: str, order_id: str, reason: str, version: str | None) -> None: ...

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
        """Count one more failed attempt, schedule the next with backoff, park after ``max_attempts``.

        An unparked failed order has no stored version (it is fetched whenever it
        is listed); a parked one keeps ``version``, so it is fetched again only
        once it changes.
        """
        ...

    def clear_failed(self, channel: str, account_id: str, order_id: str) -> None: ...

    def failed_order_ids(self, channel: str, account_id: str, *, now: datetime | None = None) -> Sequence[str]:
        """Failed orders due for another attempt at ``now`` (all unparked ones when ``now`` is None)."""
        ...

    def failed_orders(self, channel: str | None = None) -> Sequence[FailedOrderRecord]: ...

    def retry_failed(self, channel: str, account_id: str | None, order_id: str | None) -> int:
        """Unpark and make due now (one order, or every one when ``order_id`` is None); returns how many."""
        ...

    def iter_orders(self, channel: str | None = None) -> Iterator[StoredOrder]: ...

    def get_order(self, channel: str, order_id: str, account_id: str | None = None) -> StoredOrder | None:
        """One stored order. Order ids are unique per store account only: without ``account_id``,
        an id that two accounts share is an error, never one of them picked at random."""
        ...

    def get_notification(self, notification_id: str) -> NotificationRecord | None: ...

    def save_notification(self, record: NotificationRecord) -> None: ...

    def pending_notifications(
        self, channel: str, account_id: str, *, now: datetime | None = None
    ) -> Sequence[NotificationRecord]:
        """Pending and failed notifications due at ``now`` (all of them when ``now`` is None)."""
        ...

    def notifications(self, statuses: Sequence[str] | None = None) -> Sequence[NotificationRecord]: ...

    def order_notifications(self, channel: str, account_id: str, order_id: str) -> Sequence[NotificationRecord]:
        """Every notification of one order, oldest first: by ``created_at`` (when the host asked for it),
        then the order they entered the ledger."""
        ...

    def record_result(self, notification_id: str, result: NotificationResult) -> None: ...

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
        """Take the notification claim on one order, atomically, for ``lease``; False while another holds it.

        A claim whose lease has run out (its notifier crashed) is taken over. Leases are measured on the
        database's own clock (``now=None``, what the notifier passes), the one clock every notifier
        sharing the database agrees on; ``now`` is for tests.
        """
        ...

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
        """Extend ``owner``'s claim by ``lease`` if ``owner`` still holds it (even past its lease, as long as
        nobody took it); False once another notifier took it or it was released. Never takes a free claim."""
        ...

    def release_order(self, channel: str, account_id: str, order_id: str, owner: str) -> None:
        """Give the claim back, if ``owner`` still holds it."""
        ...

    def adopt_account(self, channel: str, old_account_id: str, account_id: str) -> int:
        """Move every row recorded under ``old_account_id`` (an id an older release gave this store) to
        ``account_id``; rows ``account_id`` already has win. Returns how many orders moved."""
        ...

    def mark_shipped(self, channel: str, account_id: str, order_id: str) -> bool:
        """Show a shipment the store accepted on the stored order (status shipped) and forget its stored
        version, so the next import that lists the order reads it in full and the database again says
        what the store says; False if absent."""
        ...
