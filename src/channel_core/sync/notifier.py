"""Shipment notifications with a ledger: exactly once, retried with backoff, visible to the operator.

Each shipment gets a notification id from (channel, account, order, tracking
number, carrier, tracking URL). Sending one goes:

1. the ledger: a shipment already ``sent`` (or ``already_sent``) is not sent
   again; a ``cancelled`` one never;
2. an atomic **claim on the order** with a lease (``claim_order``, measured on
   the database's clock), so two notifiers at once (threads, processes,
   ``channel ship`` beside ``channel sync``) never both talk to the store about
   one order; a crashed notifier's claim runs out and is taken over. A notifier
   that finds the order claimed waits for the other to finish and reports what
   the ledger then says. The claim is renewed just before every write request
   leaves (after every rate-limit and budget wait): a notifier held up past its
   lease writes nothing;
3. **newer wins**: holding the claim, a shipment that a newer one of the same
   order and package (:func:`~channel_core.sync.store.package_key`) has
   followed in the ledger is cancelled as superseded, never sent; a new
   shipment cancels the older ones of its package still waiting (pending,
   failed or parked), so a corrected tracking number is never overwritten by
   the one it corrects;
4. the ledger row is written ``pending`` with one more attempt *before* the
   call, so a crash or timeout leaves a record that a later run retries; the
   channel's read-before-write (Oxatis compares the store's current state and
   transport info) makes that retry safe;
5. the outcome: ``sent``/``already_sent`` are final; ``sent`` marks the stored
   order shipped (and drops its stored version, so the next import reads it
   in full). A refusal is ``failed`` and an outcome unknown after a write
   stays ``pending``: both count as attempts, are retried with backoff and are
   ``parked`` after ``max_attempts``, until an operator retries or cancels them
   (``channel notifications``). A spent quota, a rate limit or a store that
   could not be reached is **not an attempt**: nothing was refused and nothing
   is unknown, so the notification waits for the next run, attempts unchanged.

Nothing one notification does can stop :meth:`Notifier.retry_pending` from
trying the others.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from channel_core.errors import (
    ChannelAPIError,
    ChannelError,
    ClaimLostError,
    InvalidShipmentError,
    QuotaExhaustedError,
    RateLimitedError,
)
from channel_core.hooktypes import Connection
from channel_core.logs import get_logger
from channel_core.models import NotificationResult, NotificationStatus, Shipment
from channel_core.registry import Channel
from channel_core.sync.accounts import adopt_account
from channel_core.sync.store import (
    NotificationRecord,
    NotificationState,
    OrderStore,
    notification_id,
    notify_backoff,
    package_key,
)

__all__ = ["DEFAULT_LEASE", "MAX_NOTIFY_ATTEMPTS", "NotificationOutcome", "Notifier", "not_attempted"]

logger = get_logger(__name__)
PENDING = NotificationState.PENDING
MAX_NOTIFY_ATTEMPTS = 5
DEFAULT_LEASE = timedelta(minutes=5)  # longer than one write request with its rate-limit and budget waits
WAITING = frozenset({NotificationState.PENDING, NotificationState.FAILED, NotificationState.PARKED})


@dataclass(frozen=True, slots=True)
class NotificationOutcome:
    notification_id: str
    result: NotificationResult
    from_ledger: bool = False
    pending: bool = False  # the outcome is unknown or the order is busy; a later run asks again
    parked: bool = False  # attempts exhausted: waits for an operator
    stopped: str | None = None  # "quota", "rate_limited" or "unreachable": the store cannot be asked now


def not_attempted(exc: ChannelError) -> str | None:
    """Why ``exc`` means the store was not asked at all (``"quota"``, ``"rate_limited"``, ``"unreachable"``),
    or ``None`` when the store may have received and processed the request."""
    if isinstance(exc, QuotaExhaustedError):
        return "quota"
    if isinstance(exc, RateLimitedError):
        return "rate_limited"
    if isinstance(exc, ChannelAPIError) and not exc.request_sent:
        return "unreachable"
    return None


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}:{uuid.uuid4().hex[:8]}"


class Notifier:
    """Sends shipments through a channel, exactly once per shipment, over an :class:`OrderStore` ledger.

    :param lease: how long a claim on an order lasts before another notifier may take it over (on the
        database's clock); it must outlast one write request with its rate-limit and budget waits.
    :param wait: how long to wait for another notifier's claim on the same order.
    :param clock: the host's clock (aware UTC), for backoff.
    :param claim_clock: the clock claims and leases are measured on; ``None`` (the default) is the
        database's own, the one every notifier sharing it agrees on. Tests pass a fake one.
    """

    def __init__(
        self,
        channel: Channel,
        connection: Connection,
        store: OrderStore,
        *,
        lease: timedelta = DEFAULT_LEASE,
        wait: float = 60.0,
        max_attempts: int = MAX_NOTIFY_ATTEMPTS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
        claim_clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.channel = channel
        self.connection = connection
        self.store = store
        self.lease = lease
        self.wait = wait
        self.max_attempts = max_attempts
        self.clock = clock
        self.sleep = sleep
        self.claim_clock = claim_clock

    def _claim_now(self) -> datetime | None:
        return self.claim_clock() if self.claim_clock is not None else None

    def notify(self, shipment: Shipment, *, queued_at: datetime | None = None) -> NotificationOutcome:
        """Send ``shipment`` unless the ledger says it was already sent or a newer one superseded it.

        :param queued_at: when the host asked for this shipment (a queue's enqueue time, on the database's
            clock): its place among the order's shipments when jobs run out of order. Default: now.

        :raises InvalidShipmentError: the shipment breaks a limit the channel declares (nothing is
            recorded), or the store shows the order cancelled and ``shipment.force`` is not set (the
            notification is parked with the reason).
        """
        self.channel.info().capabilities.check_shipment(shipment)
        adopt_account(self.store, self.connection)
        nid = notification_id(self.channel.name, self.connection.account_id, shipment)
        done = self._from_ledger(nid)
        if done is not None:
            return done
        owner = _owner()
        account, order_id = self.connection.account_id, shipment.order_id
        waited = 0.0
        while not self.store.claim_order(
            self.channel.name, account, order_id, owner, now=self._claim_now(), lease=self.lease
        ):
            if waited >= self.wait:
                message = "another notifier is sending a shipment for this order; it will be retried"
                return NotificationOutcome(
                    nid, NotificationResult(NotificationStatus.FAILED, (), message), pending=True
                )
            self.sleep(0.05)
            waited += 0.05
        try:
            done = self._from_ledger(nid)  # the notifier we waited for may have sent this very shipment
            if done is not None:
                return done
            if queued_at is not None and self.store.get_notification(nid) is None:
                self._save(nid, shipment, PENDING, (), None, 0, created_at=queued_at)  # its place in the ledger
            superseded = self._supersede(nid, shipment)
            if superseded is not None:
                return superseded
            return self._send(nid, shipment, owner)
        finally:
            self.store.release_order(self.channel.name, account, order_id, owner)

    def _from_ledger(self, nid: str) -> NotificationOutcome | None:
        record = self.store.get_notification(nid)
        if record is None:
            return None
        if record.status in NotificationState.DONE:
            return NotificationOutcome(
                nid, NotificationResult(NotificationStatus.ALREADY_SENT, (), "already sent (ledger)"), from_ledger=True
            )
        if record.status == NotificationState.CANCELLED:
            reason = record.message or "cancelled by an operator"
            return NotificationOutcome(
                nid, NotificationResult(NotificationStatus.FAILED, (), f"{reason}; not sent"), from_ledger=True
            )
        return None

    def _supersede(self, nid: str, shipment: Shipment) -> NotificationOutcome | None:
        """Holding the claim: newer wins. Cancel this shipment if a newer one of its package followed it in
        the ledger; otherwise cancel the older ones of its package still waiting to be sent."""
        package = package_key(shipment)
        ledger = [
            r
            for r in self.store.order_notifications(self.channel.name, self.connection.account_id, shipment.order_id)
            if package_key(r.shipment) == package
        ]
        ids = [r.notification_id for r in ledger]
        if nid in ids:
            newer = [r for r in ledger[ids.index(nid) + 1 :] if r.status != NotificationState.CANCELLED]
            if newer:
                latest = newer[-1]
                reason = (
                    f"superseded by a newer shipment of the same package (tracking {latest.shipment.tracking_number},"
                    f" carrier {latest.shipment.carrier})"
                )
                record = self.store.get_notification(nid)
                self._save(nid, shipment, NotificationState.CANCELLED, (), reason, record.attempts if record else 0)
                logger.info("notification_superseded", channel=self.channel.name, order_id=shipment.order_id)
                return NotificationOutcome(
                    nid, NotificationResult(NotificationStatus.FAILED, (), f"{reason}; not sent"), from_ledger=True
                )
            older = ledger[: ids.index(nid)]
        else:
            older = ledger
        for record in older:
            if record.status in WAITING:
                reason = (
                    f"superseded by a newer shipment of the same package (tracking {shipment.tracking_number}, "
                    f"carrier {shipment.carrier})"
                )
                self._save(
                    record.notification_id,
                    record.shipment,
                    NotificationState.CANCELLED,
                    record.fields_sent,
                    reason,
                    record.attempts,
                )
                logger.info("notification_superseded", channel=self.channel.name, order_id=shipment.order_id)
        return None

    def _send(self, nid: str, shipment: Shipment, owner: str) -> NotificationOutcome:
        from channel_core.http import guard_writes

        record = self.store.get_notification(nid)
        previous = record.attempts if record is not None else 0
        attempts = previous + 1
        self._save(nid, shipment, PENDING, (), None, attempts)  # a crash from here on counts as an attempt
        account, order_id = self.connection.account_id, shipment.order_id
        writes = [0]

        def still_ours() -> None:  # the last thing before a write request leaves: renew the claim, or write nothing
            if not self.store.renew_claim(
                self.channel.name, account, order_id, owner, now=self._claim_now(), lease=self.lease
            ):
                raise ClaimLostError(
                    f"the claim on order {order_id} was taken over while this notifier was held up; not writing"
                )
            writes[0] += 1

        try:
            with guard_writes(still_ours):
                result = self.channel.notify_shipment(self.connection, shipment)
        except InvalidShipmentError as exc:  # e.g. the store shows the order cancelled: the operator decides
            self._save(nid, shipment, NotificationState.PARKED, (), str(exc), attempts)
            raise
        except ClaimLostError as exc:  # the notifier now holding the order owns the ledger entry too
            logger.warning("notification_claim_lost", channel=self.channel.name, order_id=order_id, error=str(exc))
            done = self._from_ledger(nid)
            return done or NotificationOutcome(
                nid, NotificationResult(NotificationStatus.FAILED, (), str(exc)), pending=True
            )
        except ChannelError as exc:
            stopped = not_attempted(exc)
            if stopped is not None:  # quota, rate limit, unreachable: the store was not asked
                return self._not_attempted(nid, shipment, previous, exc, stopped)
            if writes[0] == 0:
                if isinstance(exc, ChannelAPIError) and not exc.retriable:  # the store refused outright
                    return self._retry_later(nid, shipment, NotificationState.FAILED, str(exc), attempts)
                return self._not_attempted(nid, shipment, previous, exc, None)  # a read failed: nothing written
            kind = "unreadable reply" if not isinstance(exc, ChannelAPIError) else "outcome unknown"
            return self._retry_later(nid, shipment, PENDING, f"{kind}, will retry ({exc})", attempts)
        if result.status is NotificationStatus.FAILED:
            return self._retry_later(
                nid, shipment, NotificationState.FAILED, result.message or "refused", attempts, result.fields_sent
            )
        self._save(nid, shipment, result.status.value, result.fields_sent, result.message, attempts)
        if result.status is NotificationStatus.SENT:  # the store changed: show it until the next import reads it
            self.store.mark_shipped(self.channel.name, self.connection.account_id, shipment.order_id)
        return NotificationOutcome(nid, result)

    def _not_attempted(
        self, nid: str, shipment: Shipment, previous: int, exc: ChannelError, stopped: str | None
    ) -> NotificationOutcome:
        """The store was not asked (quota, rate limit, unreachable) or nothing was written: not an attempt."""
        message = f"not sent yet, will retry ({exc})"
        self._save(nid, shipment, PENDING, (), message, previous, next_attempt=self.clock())
        logger.warning(
            "notification_not_sent",
            channel=self.channel.name,
            order_id=shipment.order_id,
            status="pending",
            attempts=previous,
            error=message,
        )
        return NotificationOutcome(
            nid, NotificationResult(NotificationStatus.FAILED, (), message), pending=True, stopped=stopped
        )

    def _retry_later(
        self,
        nid: str,
        shipment: Shipment,
        status: str,
        message: str,
        attempts: int,
        fields_sent: tuple[str, ...] = (),
    ) -> NotificationOutcome:
        parked = attempts >= self.max_attempts
        if parked:
            message = f"{message}; parked after {attempts} attempts"
        self._save(
            nid,
            shipment,
            NotificationState.PARKED if parked else status,
            fields_sent,
            message,
            attempts,
            next_attempt=None if parked else self.clock() + notify_backoff(attempts),
        )
        logger.warning(
            "notification_not_sent",
            channel=self.channel.name,
            order_id=shipment.order_id,
            status="parked" if parked else status,
            attempts=attempts,
            error=message,
        )
        return NotificationOutcome(
            nid,
            NotificationResult(NotificationStatus.FAILED, fields_sent, message),
            pending=status == PENDING and not parked,
            parked=parked,
        )

    def _save(
        self,
        nid: str,
        shipment: Shipment,
        status: str,
        fields_sent: tuple[str, ...],
        message: str | None,
        attempts: int,
        *,
        next_attempt: datetime | None = None,
        created_at: datetime | None = None,
    ) -> None:
        self.store.save_notification(
            NotificationRecord(
                nid,
                self.channel.name,
                self.connection.account_id,
                shipment,
                status,
                fields_sent,
                message,
                attempts,
                next_attempt,
                created_at=created_at,
            )
        )

    def retry_pending(self) -> list[NotificationOutcome]:
        """Send again every pending or failed notification that is due; never raises for one of them.

        Stops at the first one the store could not be asked about (quota, rate limit, unreachable): the
        others would meet the same wall, and none of them has been refused.
        """
        outcomes = []
        adopt_account(self.store, self.connection)
        due = self.store.pending_notifications(self.channel.name, self.connection.account_id, now=self.clock())
        for record in due:
            try:
                outcome = self.notify(record.shipment)
            except ChannelError as exc:  # e.g. a limit the channel declares now: park it for the operator
                message = f"not sent: {exc}"
                self._save(
                    record.notification_id,
                    record.shipment,
                    NotificationState.PARKED,
                    (),
                    message,
                    record.attempts,
                )
                outcome = NotificationOutcome(
                    record.notification_id,
                    NotificationResult(NotificationStatus.FAILED, (), message),
                    parked=True,
                )
            outcomes.append(outcome)
            if outcome.stopped is not None:
                break
        return outcomes
