"""Worker metrics: what a sync, a notification and a scheduling tick leave in Prometheus's figures."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Iterator
from datetime import timedelta

import pytest

from channel_core import Channel, Shipment
from tests.sync.postgres import fresh_database


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database("metrics") as dsn:
        yield dsn


def _value(metrics: object, name: str, **labels: str) -> float:
    found = metrics.registry.get_sample_value(name, labels)  # type: ignore[attr-defined]
    return float(found) if found is not None else 0.0


def test_syncs_orders_notifications_and_ticks_are_counted(oxatis: Channel, database: str) -> None:
    from channel_core.fleet.engine import SCHEDULE_TASK, enqueue_due, enqueue_shipment, make_app, prepare_database
    from channel_core.fleet.metrics import WorkerMetrics
    from channel_core.fleet.registry import StoreRegistry
    from channel_core.sync.postgres import PostgresStore
    from channel_oxatis.sandbox import SandboxConfig, SandboxServer

    with SandboxServer(SandboxConfig(count=12, token="tok-a", timezone="UTC")) as server:
        server.add_store("tok-b", count=5, seed=3)
        prepare_database(database)
        with PostgresStore(database) as db:
            registry = StoreRegistry(db, schemes=("env", "vault"))
            for key in ("a", "b", "gone"):
                registry.add(
                    key,
                    oxatis.info(),
                    settings={"base_url": server.url, "store_timezone": "UTC", "retry_attempts": 1},
                    credentials=f"vault:{key}",
                    every=timedelta(minutes=10),
                )
            db.execute("UPDATE stores SET created_at = now() - interval '1 hour' WHERE store_key = 'gone'")
        vault = {"a": "tok-a", "b": "tok-b", "gone": "tok-revoked"}
        metrics = WorkerMetrics()
        app = make_app(
            database, credentials=lambda store, info: {"token": vault[store.key]}, schedule=None, metrics=metrics
        )
        with app.open():
            assert sorted(enqueue_due(app, database)) == ["a", "b", "gone"]
        app.run_worker(wait=False, concurrency=1, install_signal_handlers=False)

        assert _value(metrics, "channel_syncs_total", channel="oxatis", result="completed") == 2
        assert _value(metrics, "channel_syncs_total", channel="oxatis", result="error") == 1  # refused credentials
        assert (
            _value(metrics, "channel_orders_total", channel="oxatis", outcome="imported")
            + _value(metrics, "channel_orders_total", channel="oxatis", outcome="skipped")
            == 17
        )
        assert _value(metrics, "channel_sync_duration_seconds_count", channel="oxatis") == 3
        assert _value(metrics, "channel_jobs_in_flight", task="channel_core.sync_store") == 0

        with app.open():
            enqueue_shipment(app, "a", Shipment(order_id="100003", tracking_number="TRK1", carrier="Colissimo"))
        app.run_worker(wait=False, concurrency=1, install_signal_handlers=False)
        assert _value(metrics, "channel_notifications_total", channel="oxatis", result="sent") == 1

        with PostgresStore(database) as db:  # 'gone' has not synced in three intervals; 'a' is due again
            db.execute("UPDATE stores SET last_run_at = now() - interval '31 minutes' WHERE store_key = 'gone'")
            db.execute("UPDATE stores SET next_run = now() - interval '90 seconds' WHERE store_key = 'a'")
        tick = app.tasks[SCHEDULE_TASK]
        with app.open():
            asyncio.run(_tick(app, tick))
        assert _value(metrics, "channel_stores", state="total") == 3
        assert _value(metrics, "channel_stores", state="overdue") == 1
        assert _value(metrics, "channel_scheduling_lag_seconds") == 0  # 'a' was queued by this tick, so not late


async def _tick(app: object, tick: object) -> None:
    async with app.open_async():  # type: ignore[attr-defined]
        await tick(timestamp=0)  # type: ignore[operator]


def test_the_worker_serves_its_metrics_over_http() -> None:
    import socket

    from channel_core.fleet.metrics import WorkerMetrics

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    metrics = WorkerMetrics()
    metrics.notification("oxatis", "parked")
    metrics.serve(port, address="127.0.0.1")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    assert 'channel_notifications_total{channel="oxatis",result="parked"} 1.0' in text
    assert "channel_scheduling_lag_seconds" in text
