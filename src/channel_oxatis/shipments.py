"""Telling Oxatis an order shipped: transport info, then the shipped progress state.

Read before write makes it idempotent: the order (``OrderGet``) and its
progress-state log are read first, and only what differs from the store's
*current* state is written. The order is shipped when its current
``ProgressStateID`` is the shipped state's ``OxID`` (or, when the order does
not say, when its latest log entry is that state, matched by ``ID``, ``Code``
or name); its transport info is done when the tracking number, the carrier and
the tracking URL given all match. A repeat of the same shipment is
``already_sent`` with no write; a shipment moved back on hold and shipped
again, or a corrected carrier or URL, is written. An unrecognised log reply is
a :class:`~channel_core.errors.PayloadError`: the notification stays pending.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from channel_core.errors import ClientError, InvalidShipmentError, NotFoundError
from channel_core.logs import get_logger
from channel_core.models import NotificationResult, NotificationStatus, OrderStatus, Shipment
from channel_oxatis.client import decode_order
from channel_oxatis.connection import OxatisConnection
from channel_oxatis.mapping import resolve_status
from channel_oxatis.wire import request_xml

__all__ = ["FIELDS_NOT_SENT", "FIELDS_SENT", "FIELD_LIMITS", "notify"]

logger = get_logger(__name__)

FIELDS_SENT = ("status", "tracking_number", "carrier", "tracking_url", "ship_date")
FIELDS_NOT_SENT = ("service", "shipping_cost", "notes_to_buyer", "items")
# OrderEntity string lengths (oxatis-api.md §2.6): TrackingNumber 32, TrackingUrl 200, TransportName 30.
FIELD_LIMITS: Mapping[str, int] = {"tracking_number": 32, "tracking_url": 200, "carrier": 30}


def _clean(value: Any) -> str:
    return str(value).strip() if value is not None else ""


def current_state_code(conn: OxatisConnection, order: Mapping[str, Any], logs: list[dict[str, Any]]) -> str | None:
    """The mnemonic of the order's current progress state, or ``None`` when it has none we know."""
    state_id = order.get("ProgressStateID")
    if state_id is not None:
        return conn.states_by_id.get(state_id)
    if not logs:
        return None
    latest = max(enumerate(logs), key=lambda pair: (pair[1].get("Date") or datetime.min, pair[0]))[1]
    if latest.get("Code"):
        return str(latest["Code"])
    if latest.get("ID") is not None and latest["ID"] in conn.states_by_id:
        return conn.states_by_id[latest["ID"]]
    for key in ("ProgressStateName", "ProgressStateNameEN"):
        name = _clean(latest.get(key))
        if name and name in conn.states_by_name:
            return conn.states_by_name[name]
    return None


def transport_matches(order: Mapping[str, Any], shipment: Shipment) -> bool:
    """The store already holds this tracking number, carrier and (when given) tracking URL."""
    if _clean(order.get("TrackingNumber")) != shipment.tracking_number.strip():
        return False
    if _clean(order.get("TransportName")) != shipment.carrier.strip():
        return False
    return shipment.tracking_url is None or _clean(order.get("TrackingUrl")) == shipment.tracking_url.strip()


def notify(conn: OxatisConnection, shipment: Shipment, *, now: datetime | None = None) -> NotificationResult:
    client = conn.client
    order_id = shipment.order_id
    try:
        current = decode_order(client.call("OrderGet", request_xml("OrderId", [("OxID", order_id)])), order_id=order_id)
        logs = client.progress_state_logs(order_id)
    except NotFoundError:
        return NotificationResult(NotificationStatus.FAILED, (), f"order {order_id} not found in the store")
    shipped_codes = set(conn.shipped_codes()) | {conn.shipped_code}
    state_done = current_state_code(conn, current, logs) in shipped_codes
    transport_done = transport_matches(current, shipment)
    if state_done and transport_done:
        return NotificationResult(NotificationStatus.ALREADY_SENT, (), "the store already shows this shipment")
    if not shipment.force:
        resolved = resolve_status(current, conn.mapping_context())
        if resolved is not None and resolved[0] is OrderStatus.CANCELLED:
            raise InvalidShipmentError(
                f"order {order_id} is cancelled in the store ({resolved[1]}); nothing was sent. Ship it anyway "
                "with --force (Shipment.force=True) if the parcel really left"
            )
    sent: list[str] = []
    try:
        if not transport_done:
            client.update_transport_info(
                order_id,
                tracking_number=shipment.tracking_number.strip(),
                tracking_url=shipment.tracking_url.strip() if shipment.tracking_url else None,
                transport_name=shipment.carrier.strip(),
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
