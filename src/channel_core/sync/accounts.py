"""Moving a store's rows from the ids older releases recorded it under to the id its channel gives now."""

from __future__ import annotations

import threading
import weakref

from channel_core.hooktypes import Connection
from channel_core.logs import get_logger
from channel_core.sync.store import OrderStore

__all__ = ["adopt_account", "nothing_to_adopt"]

logger = get_logger(__name__)
_done: weakref.WeakKeyDictionary[Connection, set[int]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def adopt_account(store: OrderStore, connection: Connection) -> None:
    """Once per connection and store: re-key the rows of ``connection.previous_account_ids`` to its
    ``account_id`` (checkpoints, orders, versions, failures, the notification ledger), so an upgrade
    neither re-imports a store nor forgets what it sent."""
    if not connection.previous_account_ids:
        return
    with _lock:
        seen = _done.setdefault(connection, set())
        if id(store) in seen:
            return
        seen.add(id(store))
    for old in connection.previous_account_ids:
        moved = store.adopt_account(connection.channel, old, connection.account_id)
        if moved:
            logger.info(
                "account_adopted", channel=connection.channel, old_account_id=old, account_id=connection.account_id,
                orders=moved,
            )  # fmt: skip


def nothing_to_adopt(store: OrderStore, connection: Connection) -> None:
    """Note that ``store`` holds no rows under ``connection``'s previous ids (a run's start found none): later
    :func:`adopt_account` calls for the same connection and store return at once."""
    with _lock:
        _done.setdefault(connection, set()).add(id(store))
