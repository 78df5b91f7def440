"""The host-side sync engine: incremental import and shipment notifications over a small store interface."""

from channel_core.sync.importer import DEFAULT_MARGIN, Importer, ImportSummary
from channel_core.sync.notifier import NotificationOutcome, Notifier
from channel_core.sync.sqlite import SQLiteStore
from channel_core.sync.store import (
    Checkpoint,
    FailedOrderRecord,
    NotificationRecord,
    NotificationState,
    OrderStore,
    StoredOrder,
    fingerprint,
)

__all__ = [
    "DEFAULT_MARGIN",
    "Checkpoint",
    "FailedOrderRecord",
    "ImportSummary",
    "Importer",
    "NotificationOutcome",
    "NotificationRecord",
    "NotificationState",
    "Notifier",
    "OrderStore",
    "SQLiteStore",
    "StoredOrder",
    "fingerprint",
]
