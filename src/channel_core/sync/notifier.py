"""Shipment notifications with a ledger: stable ids, never re-sent once sent, failures retried.

Each shipment gets a notification id from (channel, account, order, tracking
number, carrier). The ledger row is written as ``pending`` *before* the call, so
a crash or timeout leaves a record that the next run retries; the channel's own
idempotency (Oxatis reads the order's state log first) makes that retry safe.
"""

from __future__ import annotations

from dataclasses import dataclass

from channel_core.errors import ChannelAPIError
from channel_core.hooktypes import Connection
from channel_core.logs import get_logger
from channel_core.models import NotificationResult, NotificationStatus, Shipment
from channel_core.registry import Channel
from channel_core.sync.store import NotificationRecord, OrderStore, notification_id

__all__ = ["NotificationOutcome", "Notifier"]

logger = get_logger(__name__)
PENDING = "pending"


@dataclass(frozen=True, slots=True)
class NotificationOutcome:
    notification_id: str
    result: NotificationResult
    from_ledger: bool = False
    pending: bool = False  # the outcome is unknown; the next run asks again


class Notifier:
    def __init__(self, channel: Channel, connection: Connection, store: OrderStore) -> None:
        self.channel = channel
        self.connection = connection
        self.store = store

    def notify(self, shipment: Shipment) -> NotificationOutcome:
        """Send ``shipment`` unless the ledger says it was already sent."""
        nid = notification_id(self.channel.name, self.connection.account_id, shipment)
        record = self.store.get_notification(nid)
        if record is not None and record.status in (
            NotificationStatus.SENT.value,
            NotificationStatus.ALREADY_SENT.value,
        ):
            return NotificationOutcome(
                nid,
                NotificationResult(NotificationStatus.ALREADY_SENT, (), "already sent (ledger)"),
                from_ledger=True,
            )
        attempts = (record.attempts if record is not None else 0) + 1
        self.store.save_notification(
            NotificationRecord(
                nid, self.channel.name, self.connection.account_id, shipment, PENDING, (), None, attempts
            )
        )
        try:
            result = self.channel.notify_shipment(self.connection, shipment)
        except ChannelAPIError as exc:
            message = f"pending: outcome unknown, will retry ({exc})"
            self.store.save_notification(
                NotificationRecord(
                    nid,
                    self.channel.name,
                    self.connection.account_id,
                    shipment,
                    PENDING,
                    (),
                    message,
                    attempts,
                )
            )
            logger.warning(
                "notification_pending", channel=self.channel.name, order_id=shipment.order_id, error=str(exc)
            )
            return NotificationOutcome(nid, NotificationResult(NotificationStatus.FAILED, (), message), pending=True)
        self.store.record_result(nid, result)
        return NotificationOutcome(nid, result)

    def retry_pending(self) -> list[NotificationOutcome]:
        """Send again every notification left pending or failed by earlier runs."""
        return [
            self.notify(r.shipment)
            for r in self.store.pending_notifications(self.channel.name, self.connection.account_id)
        ]
