"""Telling Oxatis an order shipped: transport info, then the shipped progress state.

Read before write makes it idempotent: the order's tracking number and its
progress-state log are read first, and only what is missing is written. A
repeat of the same shipment is ``already_sent`` with no second state entry,
including after a timeout that left the outcome of an earlier attempt unknown.
"""

from __future__ import annotations

from datetime import UTC, datetime

from channel_core.errors import ClientError, NotFoundError
from channel_core.logs import get_logger
from channel_core.models import NotificationResult, NotificationStatus, Shipment
from channel_oxatis.client import decode_order
from channel_oxatis.connection import OxatisConnection
from channel_oxatis.wire import request_xml

__all__ = ["FIELDS_NOT_SENT", "FIELDS_SENT", "notify"]

logger = get_logger(__name__)

FIELDS_SENT = ("status", "tracking_number", "carrier", "tracking_url", "ship_date")
FIELDS_NOT_SENT = ("service", "shipping_cost", "notes_to_buyer", "items")


def notify(conn: OxatisConnection, shipment: Shipment, *, now: datetime | None = None) -> NotificationResult:
    client = conn.client
    order_id = shipment.order_id
    try:
        current = decode_order(client.call("OrderGet", request_xml("OrderId", [("OxID", order_id)])), order_id=order_id)
        logs = client.progress_state_logs(order_id)
    except NotFoundError:
        return NotificationResult(NotificationStatus.FAILED, (), f"order {order_id} not found in the store")
    shipped_codes = set(conn.shipped_codes()) | {conn.shipped_code}
    state_done = any(entry.get("Code") in shipped_codes for entry in logs)
    tracking_done = (current.get("TrackingNumber") or "").strip() == shipment.tracking_number.strip()
    if state_done and tracking_done:
        return NotificationResult(NotificationStatus.ALREADY_SENT, (), "the store already shows this shipment")
    sent: list[str] = []
    try:
        if not tracking_done:
            client.update_transport_info(
                order_id,
                tracking_number=shipment.tracking_number,
                tracking_url=shipment.tracking_url,
                transport_name=shipment.carrier,
            )
            sent += ["tracking_number", "carrier"]
            if shipment.tracking_url:
                sent.append("tracking_url")
        if not state_done:
            when = (shipment.ship_date or now or datetime.now(UTC)).astimezone(conn.settings.tz)
            client.update_tracking(
                order_id,
                when=when,
                code=conn.shipped_code,
                publish=conn.settings.notify_customer,
                send_email=conn.settings.notify_customer,
                comment=None,
            )
            sent.append("status")
            if shipment.ship_date is not None:
                sent.append("ship_date")
    except ClientError as exc:
        logger.warning("shipment_refused", channel="oxatis", order_id=order_id, error=str(exc))
        return NotificationResult(NotificationStatus.FAILED, tuple(sent), str(exc))
    logger.info("shipment_sent", channel="oxatis", order_id=order_id, fields=sent)
    return NotificationResult(NotificationStatus.SENT, tuple(sent), None)
