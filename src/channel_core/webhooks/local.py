"""Webhooks on one SQLite database: record each event once, and apply events in a background worker.

One store per channel (the ``channel`` command's own configuration). The worker takes every pending event
of a store at once, so a burst coalesces: each named order is fetched once per burst, by id, through
:meth:`channel_core.sync.Importer.sync_orders` (never inside a request).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from channel_core.errors import ChannelError
from channel_core.logs import get_logger
from channel_core.registry import Channel
from channel_core.sync import Importer, ImportSummary, SQLiteStore
from channel_core.webhooks.receiver import Delivery

__all__ = ["LocalWebhooks"]

logger = get_logger(__name__)


class LocalWebhooks:
    """The ``accept`` side of the receiver, and the worker that applies events.

    :param channels: channel name to ``(channel, settings)``: what ``connect`` needs for the worker.
    :param on_synced: called after each applied burst (tests and progress displays).
    """

    def __init__(
        self,
        path: str | Path,
        channels: Mapping[str, tuple[Channel, Mapping[str, Any]]],
        *,
        on_synced: Callable[[str, ImportSummary], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.channels = dict(channels)
        self.on_synced = on_synced
        self._db = SQLiteStore(self.path)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.bursts = 0

    def accept(self, delivery: Delivery) -> bool:
        fresh = self._db.record_webhook_event(delivery.channel, delivery.store, delivery.event, delivery.received_at)
        if fresh:
            self._wake.set()
        return fresh

    def start(self) -> LocalWebhooks:
        self._thread = threading.Thread(target=self._run, name="channel-webhooks", daemon=True)
        self._thread.start()
        self._wake.set()  # events recorded before a restart
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._db.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            for name in self.channels:
                if self._stop.is_set():
                    return
                self.apply_pending(name)

    def apply_pending(self, channel_name: str) -> ImportSummary | None:
        """Sync every order the store's pending events name, once each; mark them done when it completed."""
        events = self._db.pending_webhook_events(channel_name, channel_name)
        if not events:
            return None
        keys = list(dict.fromkeys(key for _, ids in events for key in ids))
        channel, settings = self.channels[channel_name]
        try:
            with channel.connect(settings) as connection:
                summary = Importer(channel, connection, self._db).sync_orders(keys)
        except ChannelError as exc:  # connecting failed: the events stay pending, polling covers them meanwhile
            logger.warning("webhook_sync_failed", channel=channel_name, error=str(exc))
            return None
        if summary.completed:
            self._db.finish_webhook_events(channel_name, channel_name, [event_id for event_id, _ in events])
        self.bursts += 1
        if self.on_synced is not None:
            self.on_synced(channel_name, summary)
        return summary
