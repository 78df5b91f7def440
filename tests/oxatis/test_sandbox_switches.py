"""Every sandbox switch, and what the plugin does under it (live sandbox on loopback)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import structlog

from channel_core import (
    AuthenticationError,
    Channel,
    NotificationStatus,
    OrderPage,
    OrderQuery,
    QuotaExhaustedError,
    Shipment,
    TransportError,
)
from channel_oxatis.sandbox import SandboxServer, data
from tests.oxatis.conftest import sandbox_settings

WINDOW = OrderQuery(modified_since=datetime(2026, 1, 1, tzinfo=UTC), modified_until=datetime(2026, 11, 2, tzinfo=UTC))


def run_import(oxatis: Channel, sandbox: SandboxServer, **settings: object) -> list[OrderPage]:
    with oxatis.connect(sandbox_settings(sandbox, **settings)) as connection:
        return list(oxatis.fetch_orders(connection, WINDOW))


def listed(pages: list[OrderPage]) -> list[str]:
    """Every order id the stream mentioned, once each (no order may be reported twice)."""
    ids = (
        [o.order_id for p in pages for o in p.orders]
        + [s.order_id for p in pages for s in p.skipped]
        + [f.order_id for p in pages for f in p.failed]
    )
    assert len(ids) == len(set(ids)), "an order was reported twice"
    return sorted(ids)


def every_id(count: int) -> list[str]:
    return sorted(str(data.order_id_for(n)) for n in range(1, count + 1))


@pytest.mark.sandbox_config(count=20, latency=0.02)
def test_latency_switch_still_imports_everything(oxatis: Channel, sandbox: SandboxServer) -> None:
    assert listed(run_import(oxatis, sandbox)) == every_id(20)


@pytest.mark.sandbox_config(count=10)
def test_bad_token_gets_503_authentication_error(oxatis: Channel, sandbox: SandboxServer) -> None:
    with pytest.raises(AuthenticationError):
        oxatis.connect({**sandbox_settings(sandbox), "token": "nope"})


@pytest.mark.sandbox_config(count=10)
def test_app_id_is_sent_when_configured(oxatis: Channel, sandbox: SandboxServer) -> None:
    sandbox.config.app_id = "our-app-id"
    with pytest.raises(AuthenticationError):
        oxatis.connect(sandbox_settings(sandbox))
    oxatis.connect(sandbox_settings(sandbox, app_id="our-app-id")).close()


@pytest.mark.sandbox_config(count=30)
def test_quota_after_n_calls_stops_cleanly(oxatis: Channel, sandbox: SandboxServer) -> None:
    sandbox.add_fault("quota", times=-1, after=3)
    with oxatis.connect(sandbox_settings(sandbox, page_size=10, max_concurrency=1)) as connection:
        with pytest.raises(QuotaExhaustedError):
            for _ in oxatis.fetch_orders(connection, WINDOW):
                pass
    calls_at_stop = sum(sandbox.calls.values())
    assert calls_at_stop <= 4 + 10  # no retry loop against a spent quota


@pytest.mark.sandbox_config(count=20)
@pytest.mark.parametrize("kind", ["maintenance", "html500", "http503", "reset", "empty"])
def test_transient_faults_are_retried_and_the_import_completes(
    oxatis: Channel, sandbox: SandboxServer, kind: str
) -> None:
    sandbox.add_fault(kind, times=2, methods=frozenset({"OrderGetSummaryList", "OrderGetMoreDetails"}))
    pages = run_import(oxatis, sandbox)
    assert listed(pages) == every_id(20)
    assert not [f for p in pages for f in p.failed]
    assert sandbox.calls["OrderGetSummaryList"] + sandbox.calls["OrderGetMoreDetails"] == 1 + 20 + 2


@pytest.mark.sandbox_config(count=20)
def test_429_with_retry_after_is_retried(oxatis: Channel, sandbox: SandboxServer) -> None:
    sandbox.add_fault("http429", times=1, retry_after=0)
    assert listed(run_import(oxatis, sandbox)) == every_id(20)


@pytest.mark.sandbox_config(count=20)
def test_read_timeout_on_a_read_is_retried(oxatis: Channel, sandbox: SandboxServer) -> None:
    sandbox.add_fault("slow", times=1, delay=1.0, methods=frozenset({"OrderGetMoreDetails"}))
    assert listed(run_import(oxatis, sandbox, timeout=0.3)) == every_id(20)


@pytest.mark.sandbox_config(count=20)
@pytest.mark.parametrize("kind", ["malformed", "entity_bomb", "external_entity"])
def test_unreadable_detail_reply_fails_that_order_only(oxatis: Channel, sandbox: SandboxServer, kind: str) -> None:
    sandbox.add_fault(kind, times=1, methods=frozenset({"OrderGetMoreDetails"}))
    pages = run_import(oxatis, sandbox, max_concurrency=1)
    failed = [f for p in pages for f in p.failed]
    assert len(failed) == 1
    assert failed[0].order_id == "100001"
    assert "malformed XML" in failed[0].error or "DTD" in failed[0].error
    assert listed(pages) == every_id(20)


@pytest.mark.sandbox_config(count=20, wrong_type_order=100005)
def test_wrongly_typed_field_skips_that_order_naming_order_and_field(oxatis: Channel, sandbox: SandboxServer) -> None:
    pages = run_import(oxatis, sandbox)
    skipped = {s.order_id: s.reason for p in pages for s in p.skipped}
    assert "Quantity" in skipped["100005"] and "100005" in skipped["100005"]
    assert listed(pages) == every_id(20)


@pytest.mark.sandbox_config(count=40, modify_between_pages=(1, 3))
def test_orders_modified_between_pages_do_not_hide_others(oxatis: Channel, sandbox: SandboxServer) -> None:
    with structlog.testing.capture_logs() as logs:
        pages = run_import(oxatis, sandbox, page_size=10)
    # after page 1 was served its first three orders were modified: they left the fixed window and
    # every later order moved up three places. Without the rescan, 100011-100013 would be skipped.
    assert [e for e in logs if e["event"] == "window_rescan"]
    assert listed(pages) == every_id(40)


@pytest.mark.sandbox_config(count=10, with_shipped_state=False)
def test_store_without_shipped_state_refuses_to_connect(oxatis: Channel, sandbox: SandboxServer) -> None:
    from channel_core import ConfigurationError

    with pytest.raises(ConfigurationError, match="SST-SHIPPED"):
        oxatis.connect(sandbox_settings(sandbox))


@pytest.mark.sandbox_config(count=10)
def test_timeout_after_the_write_was_applied_creates_no_second_state_entry(
    oxatis: Channel, sandbox: SandboxServer
) -> None:
    sandbox.add_fault("slow_after_apply", times=1, delay=1.0, methods=frozenset({"OrderUpdateTracking"}))
    shipment = Shipment(order_id="100002", tracking_number="6A999", carrier="Colissimo")
    with oxatis.connect(sandbox_settings(sandbox, timeout=0.3)) as connection:
        with pytest.raises(TransportError):
            oxatis.notify_shipment(connection, shipment)
        assert sandbox.calls["OrderUpdateTracking"] == 1  # a write is never retried after a read timeout
        again = oxatis.notify_shipment(connection, shipment)
    assert again.status is NotificationStatus.ALREADY_SENT
    assert sandbox.store.shipped_entries(100002) == 1


@pytest.mark.sandbox_config(count=10)
def test_write_is_visible_in_later_reads(oxatis: Channel, sandbox: SandboxServer) -> None:
    with oxatis.connect(sandbox_settings(sandbox)) as connection:
        oxatis.notify_shipment(connection, Shipment(order_id="100004", tracking_number="XY1", carrier="DPD"))
        soon = datetime.now(UTC) + timedelta(minutes=1)
        pages = list(
            oxatis.fetch_orders(
                connection, OrderQuery(modified_since=datetime(2026, 1, 1, tzinfo=UTC), modified_until=soon)
            )
        )
    order = next(o for p in pages for o in p.orders if o.order_id == "100004")
    assert order.status == "shipped" and order.channel_status == "SST-SHIPPED"
    stored = sandbox.store.order(100004)
    assert stored is not None and stored["TrackingNumber"] == "XY1" and stored["TransportName"] == "DPD"


@pytest.mark.sandbox_config(count=10)
def test_order_whose_product_is_gone_still_imports_without_location(oxatis: Channel, sandbox: SandboxServer) -> None:
    order = sandbox.store.order(100002)
    assert order is not None
    items = [{**item, "ItemOxID": 999999, "ItemSKU": "GONE"} for item in order["OrderItems"]]
    sandbox.store.modify(100002, {"OrderItems": items})
    query = OrderQuery(modified_since=datetime(2026, 1, 1, tzinfo=UTC), modified_until=datetime.now(UTC) + timedelta(1))
    with oxatis.connect(sandbox_settings(sandbox, stock_location_characteristic="Emplacement")) as connection:
        pages = list(oxatis.fetch_orders(connection, query))
    imported = next(o for p in pages for o in p.orders if o.order_id == "100002")
    assert [line.location for line in imported.items] == [None] * len(items)
    assert not [f for p in pages for f in p.failed]


def test_one_sandbox_process_hosts_many_stores_each_with_its_own_orders_and_quota(oxatis: Channel) -> None:
    import subprocess
    import sys

    from channel_oxatis.sandbox import SandboxConfig

    command = [sys.executable, "-m", "channel_oxatis.sandbox", "--port", "0", "--orders", "12", "--stores", "3"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert "3 stores of 12 orders" in banner
        url = banner.split(" on ", 1)[1].split(" ", 1)[0]
        first_orders = {}
        for token in ("sandbox-token", "sandbox-token-3"):
            with oxatis.connect({"token": token, "base_url": url, "store_timezone": "UTC"}) as connection:
                pages = list(
                    oxatis.fetch_orders(connection, OrderQuery(modified_since=datetime(2000, 1, 1, tzinfo=UTC)))
                )
            first_orders[token] = [o.buyer.email for page in pages for o in page.orders]
            assert len(first_orders[token]) >= 10
        assert first_orders["sandbox-token"] != first_orders["sandbox-token-3"]  # seeded apart
        with pytest.raises(AuthenticationError):
            oxatis.connect({"token": "sandbox-token-4", "base_url": url, "store_timezone": "UTC"})
    finally:
        process.terminate()
        process.wait(timeout=10)

    with SandboxServer(SandboxConfig(count=5, timezone="UTC")) as server:  # a per-store quota, and its new day
        common = {"base_url": server.url, "store_timezone": "UTC", "retry_attempts": 1, "lookup_ttl": 0}
        oxatis.connect({"token": server.config.token, **common}).close()
        connect_calls = server.calls_by_token[server.config.token]
        server.add_store("limited", count=5, quota=connect_calls)  # enough to connect, not to list
        with oxatis.connect({"token": "limited", **common}) as connection, pytest.raises(QuotaExhaustedError):
            list(oxatis.fetch_orders(connection, OrderQuery(modified_since=datetime(2000, 1, 1, tzinfo=UTC))))
        with pytest.raises(QuotaExhaustedError):
            oxatis.connect({"token": "limited", **common})
        server.reset_quota("limited")
        oxatis.connect({"token": "limited", **common}).close()  # a new day
        assert {r.token for r in server.requests} == {server.config.token, "limited"}
