"""Prometheus metrics of one worker process: what an operator graphs and alerts on.

``pip install 'channel-integrations[engine]'`` brings ``prometheus-client``. ``channel worker --metrics-port
9464`` serves them at ``/metrics``; a host building its own app passes ``make_app(..., metrics=WorkerMetrics())``
and serves :attr:`WorkerMetrics.registry` as it likes. Each worker process has its own registry (nothing
global), so several apps in one process never mix their figures.

Metrics (``channel`` is the channel's name; no label takes a store key, so 100,000 stores cost no more series
than ten):

* ``channel_syncs_total{channel, result}``: finished syncs; ``result`` is ``completed`` or why the run stopped
  (``error``, ``quota``, ``rate_limited``, ``fenced``, ``inconsistent``, ``interrupted``, ``unavailable``).
* ``channel_sync_duration_seconds{channel}``: a histogram of sync durations.
* ``channel_orders_total{channel, outcome}``: orders ``imported``, ``updated``, ``skipped``, ``failed`` by syncs.
* ``channel_notifications_total{channel, result}``: shipment notifications ``sent``, ``already_sent``,
  ``failed``, ``parked``, ``pending`` (retried with a store's sync or sent by a job).
* ``channel_rate_budget_wait_seconds_total{channel}``: time requests waited for a shared rate budget.
* ``channel_scheduling_lag_seconds``: how overdue the most overdue due store was at the last tick.
* ``channel_stores{state}``: stores ``total``, ``due``, ``parked``, ``failing`` and ``overdue`` (not synced for
  three of its intervals), counted at the last tick (see docs/scaling.md for the alert).
* ``channel_jobs_in_flight{task}``: jobs this process is running now.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from channel_core.errors import ConfigurationError

__all__ = ["WorkerMetrics"]

_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class WorkerMetrics:
    """The metrics of one worker process, on their own :class:`prometheus_client.CollectorRegistry`."""

    def __init__(self, registry: Any = None) -> None:
        try:
            from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
        except ImportError:  # pragma: no cover - only without the extra installed
            raise ConfigurationError(
                "metrics need prometheus-client: pip install 'channel-integrations[engine]'"
            ) from None
        self.registry = on = registry if registry is not None else CollectorRegistry()
        self.syncs = Counter(
            "channel_syncs", "Finished syncs, by channel and result", ["channel", "result"], registry=on
        )
        self.sync_duration = Histogram(
            "channel_sync_duration_seconds", "Sync duration", ["channel"], buckets=_DURATION_BUCKETS, registry=on
        )
        self.orders = Counter(
            "channel_orders", "Orders handled by syncs, by outcome", ["channel", "outcome"], registry=on
        )
        self.notifications = Counter(
            "channel_notifications", "Shipment notifications, by result", ["channel", "result"], registry=on
        )
        self.budget_wait = Counter(
            "channel_rate_budget_wait_seconds",
            "Time requests waited for a shared rate budget",
            ["channel"],
            registry=on,
        )
        self.scheduling_lag = Gauge(
            "channel_scheduling_lag_seconds", "How overdue the most overdue due store was at the last tick", registry=on
        )
        self.stores = Gauge("channel_stores", "Stores by state at the last tick", ["state"], registry=on)
        self.jobs_in_flight = Gauge("channel_jobs_in_flight", "Jobs this process is running", ["task"], registry=on)

    def serve(self, port: int, address: str = "0.0.0.0") -> None:
        """Serve ``/metrics`` on ``port`` from a daemon thread."""
        from prometheus_client import start_http_server

        start_http_server(port, addr=address, registry=self.registry)

    @contextmanager
    def job(self, task: str) -> Iterator[None]:
        """Count a job in flight while it runs."""
        gauge = self.jobs_in_flight.labels(task=task)
        gauge.inc()
        try:
            yield
        finally:
            gauge.dec()

    def sync_finished(self, channel: str, result: Mapping[str, Any], seconds: float, budget_wait: float) -> None:
        """Record one sync job's record (what ``sync_runs`` holds) and duration."""
        self.syncs.labels(channel=channel, result=result.get("stopped") or "completed").inc()
        self.sync_duration.labels(channel=channel).observe(seconds)
        for outcome in ("imported", "updated", "skipped", "failed"):
            count = result.get(outcome)
            if isinstance(count, int) and count:
                self.orders.labels(channel=channel, outcome=outcome).inc(count)
        if budget_wait > 0:
            self.budget_wait.labels(channel=channel).inc(budget_wait)

    def notification(self, channel: str, result: str) -> None:
        self.notifications.labels(channel=channel, result=result).inc()

    def tick(self, lag: float, totals: Mapping[str, Any]) -> None:
        """Record what the scheduling tick saw: the lag and the store counts of ``StoreRegistry.summary``."""
        self.scheduling_lag.set(lag)
        for state in ("stores", "due", "parked", "failing", "overdue"):
            if state in totals:
                self.stores.labels(state="total" if state == "stores" else state).set(totals[state])
