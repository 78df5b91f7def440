"""Shipment notifications with a ledger: exactly once, retried with backoff, visible to the operator.

Each shipment gets a notification id from (channel, account, order, tracking
number, carrier, tracking URL). Sending one goes:

1. the ledger: a shipment already ``sent`` (or ``already_sent``) is not sent
   again; a ``cancelled`` one never;
2. an atomic **claim on the order** with a lease (``claim_order``), so two
   notifiers at once (threads, processes, ``channel ship`` beside ``channel
   sync``) never both talk to the store about one order; a crashed notifier's
   claim runs out and is taken over. A notifier that finds the order claimed
   waits for the other to finish and reports what the ledger then says;
3. the ledger row is written ``pending`` with one more attempt *before* the
   call, so a crash or timeout leaves a record that a later run retries; the
   channel's read-before-write (Oxatis compares the store's current state and
   transport info) makes that retry safe;
4. the outcome: ``sent``/``already_sent`` are final and mark the stored order
   shipped; an unknown outcome stays ``pending`` and a refusal is ``failed``;
   both are retried with backoff and ``parked`` after ``max_attempts``, until
   an operator retries or cancels them (``channel notifications``).

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

from channel_core.errors import ChannelAPIError, ChannelError, ClaimLostError, InvalidShipmentError
from channel_core.hooktypes import Connection
from channel_core.logs import get_logger
from channel_core.models import NotificationResult, NotificationStatus, Shipment
from channel_core.registry import Channel
from channel_core.sync.store import NotificationRecord, NotificationState, OrderStore, notification_id, notify_backoff

__all__ = ["DEFAULT_LEASE", "MAX_NOTIFY_ATTEMPTS", "NotificationOutcome", "Notifier"]

logger = get_logger(__name__)
PENDING = NotificationState.PENDING
MAX_NOTIFY_ATTEMPTS = 5
DEFAULT_LEASE = timedelta(minutes=5)  # longer than one notification with all its retries


@dataclass(frozen=True, slots=True)
class NotificationOutcome:
    notification_id: str
    result: NotificationResult
    from_ledger: bool = False
    pending: bool = False  # the outcome is unknown or the order is busy; a later run asks again
    parked: bool = False  # attempts exhausted: waits for an operator


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}:{uuid.uuid4().hex[:8]}"


class Notifier:
    """Sends shipments through a channel, exactly once per shipment, over an :class:`OrderStore` ledger.

    :param lease: how long a claim on an order lasts before another notifier may take it over.
    :param wait: how long to wait for another notifier's claim on the same order.
    :param clock: the host's clock (aware UTC), for leases and backoff.
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
    ) -> None:
        self.channel = channel
        self.connection = connection
        self.store = store
        self.lease = lease
        self.wait = wait
        self.max_attempts = max_attempts
        self.clock = clock
        self.sleep = sleep

    def notify(self, shipment: Shipment) -> NotificationOutcome:
        """Send ``shipment`` unless the ledger says it was already sent.

        :raises InvalidShipmentError: the shipment breaks a limit the channel declares; nothing is recorded.
        """
        self.channel.info().capabilities.check_shipment(shipment)
        nid = notification_id(self.channel.name, self.connection.account_id, shipment)
        done = self._from_ledger(nid)
        if done is not None:
            return done
        owner = _owner()
        account, order_id = self.connection.account_id, shipment.order_id
        waited = 0.0
        while not self.store.claim_order(
            self.channel.name, account, order_id, owner, now=self.clock(), lease=self.lease
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
            return NotificationOutcome(
                nid,
                NotificationResult(NotificationStatus.FAILED, (), "cancelled by an operator; not sent"),
                from_ledger=True,
            )
        return None

    def _send(self, nid: str, shipment: Shipment, owner: str) -> NotificationOutcome:
        from channel_core.http import guard_writes

        record = self.store.get_notification(nid)
        attempts = (record.attempts if record is not None else 0) + 1
        self._save(nid, shipment, PENDING, (), None, attempts)
        account, order_id = self.connection.account_id, shipment.order_id

        def still_ours() -> None:  # before every write request: renew the claim, or write nothing
            if not self.store.renew_claim(
                self.channel.name, account, order_id, owner, now=self.clock(), lease=self.lease
            ):
                raise ClaimLostError(
                    f"the claim on order {order_id} was taken over while this notifier was held up; not writing"
                )

        try:
            with guard_writes(still_ours):
                result = self.channel.notify_shipment(self.connection, shipment)
        except InvalidShipmentError:
            raise
        except ClaimLostError as exc:  # the notifier now holding the order owns the ledger entry too
            logger.warning("notification_claim_lost", channel=self.channel.name, order_id=order_id, error=str(exc))
            done = self._from_ledger(nid)
            return done or NotificationOutcome(
                nid, NotificationResult(NotificationStatus.FAILED, (), str(exc)), pending=True
            )
        except ChannelAPIError as exc:  # the call failed or its reply was lost: the outcome is unknown
            return self._retry_later(nid, shipment, PENDING, f"outcome unknown, will retry ({exc})", attempts)
        except ChannelError as exc:  # a reply we could not read (a read that guards a write fails closed)
            return self._retry_later(nid, shipment, PENDING, f"unreadable reply, will retry ({exc})", attempts)
        if result.status is NotificationStatus.FAILED:
            return self._retry_later(
                nid, shipment, NotificationState.FAILED, result.message or "refused", attempts, result.fields_sent
            )
        self._save(nid, shipment, result.status.value, result.fields_sent, result.message, attempts)
        self.store.mark_shipped(self.channel.name, self.connection.account_id, shipment.order_id)
        return NotificationOutcome(nid, result)

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
            )
        )

    def retry_pending(self) -> list[NotificationOutcome]:
        """Send again every pending or failed notification that is due; never raises for one of them."""
        outcomes = []
        due = self.store.pending_notifications(self.channel.name, self.connection.account_id, now=self.clock())
        for record in due:
            try:
                outcomes.append(self.notify(record.shipment))
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
                outcomes.append(
                    NotificationOutcome(
                        record.notification_id,
                        NotificationResult(NotificationStatus.FAILED, (), message),
                        parked=True,
                    )
                )
        return outcomes
