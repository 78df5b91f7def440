"""Connect, notify and error replies, replayed from cassettes recorded against the sandbox."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from channel_core import (
    AuthenticationError,
    Channel,
    ConfigurationError,
    InvalidShipmentError,
    NotificationStatus,
    OrderQuery,
    QuotaExhaustedError,
    Shipment,
)
from channel_oxatis.connection import OxatisConnection
from channel_oxatis.sandbox import SandboxConfig, SandboxServer
from tests.oxatis.conftest import Recording, sandbox_settings


def test_connect_loads_progress_states_and_mapping(oxatis: Channel, cassette: Recording) -> None:
    with oxatis.connect(cassette.settings) as connection:
        codes = [s.code for s in connection.store_statuses]
        assert "SST-SHIPPED" in codes and "PRECOMMANDE" in codes
        assert connection.status_mapping.status_for("SST-SHIPPED") == "shipped"
        assert connection.status_mapping.status_for("paid") == "awaiting_shipment"
        assert "replay-token" not in repr(connection) and "sandbox-token" not in repr(connection)


@pytest.mark.sandbox_only
@pytest.mark.sandbox_config(token="the-real-token")
def test_bad_token_is_an_authentication_error(oxatis: Channel, cassette: Recording) -> None:
    settings = {**cassette.settings, "token": "wrong-token"}
    with pytest.raises(AuthenticationError, match="Oxatis refused the connection without an AppId") as info:
        oxatis.connect(settings)
    assert info.value.status_code == 503
    assert "the token is wrong" in str(info.value) and "set app_id (OXATIS_APP_ID)" in str(info.value)
    assert "wrong-token" not in str(info.value)


@pytest.mark.sandbox_only
@pytest.mark.sandbox_config(with_shipped_state=False)
def test_store_without_shipped_state_fails_naming_its_codes(oxatis: Channel, cassette: Recording) -> None:
    with pytest.raises(ConfigurationError) as info:
        oxatis.connect(cassette.settings)
    message = str(info.value)
    assert "'SST-SHIPPED'" in message
    assert "PRECOMMANDE" in message and "EN-PREPA" in message


@pytest.mark.sandbox_only
@pytest.mark.sandbox_config(count=30)
def test_notify_sends_transport_info_then_state_and_repeat_is_already_sent(
    oxatis: Channel, cassette: Recording
) -> None:
    shipment = Shipment(
        order_id="100003",
        tracking_number="6A0001234567",
        carrier="Colissimo",
        tracking_url="https://www.laposte.fr/outils/suivre-vos-envois?code=6A0001234567",
        service="Colissimo Point Retrait",
        notes_to_buyer="Merci !",
    )
    with oxatis.connect(cassette.settings) as connection:
        first = oxatis.notify_shipment(connection, shipment)
        assert first.status is NotificationStatus.SENT
        assert first.fields_sent == ("tracking_number", "carrier", "tracking_url", "status")
        declared = oxatis.info().capabilities
        assert set(first.fields_sent) <= set(declared.notification_fields)
        assert {"service", "notes_to_buyer", "shipping_cost", "items"} <= set(declared.notification_fields_not_sent)
        second = oxatis.notify_shipment(connection, shipment)
        assert second.status is NotificationStatus.ALREADY_SENT
        assert second.fields_sent == ()
    if cassette.sandbox is not None:
        assert cassette.sandbox.store.shipped_entries(100003) == 1
        assert cassette.sandbox.calls["OrderUpdateTracking"] == 1


@pytest.mark.sandbox_only
@pytest.mark.sandbox_config(count=30)
def test_notify_rejected_by_the_server_is_failed(oxatis: Channel, cassette: Recording) -> None:
    with oxatis.connect(cassette.settings) as connection:
        result = oxatis.notify_shipment(connection, Shipment(order_id="999999", tracking_number="X1", carrier="DPD"))
    assert result.status is NotificationStatus.FAILED
    assert "999999" in (result.message or "")


@pytest.mark.sandbox_only
@pytest.mark.sandbox_config(count=30)
def test_quota_exhausted_stops_the_import_after_the_stored_pages(oxatis: Channel, cassette: Recording) -> None:
    if cassette.sandbox is not None:
        # states, account, server date, list pages 1 and 2 (read ahead), page 1's 10 details succeed
        cassette.sandbox.add_fault("quota", times=-1, after=15)
    settings = {**cassette.settings, "page_size": 10}
    with oxatis.connect(settings) as connection:
        pages = oxatis.fetch_orders(
            connection,
            OrderQuery(
                modified_since=datetime(2026, 10, 1, tzinfo=UTC),
                modified_until=datetime(2026, 11, 2, tzinfo=UTC),
            ),
        )
        first = next(pages)
        assert len(first.orders) + len(first.skipped) == 10
        assert first.checkpoint is not None
        with pytest.raises(QuotaExhaustedError, match="quota"):
            next(pages)


def test_connect_asks_the_account_and_progress_states_once_per_lookup_ttl(oxatis: Channel) -> None:
    with SandboxServer(SandboxConfig(count=1)) as server:
        oxatis.connect(sandbox_settings(server)).close()
        asked = (server.calls["ProgressStateGetList"], server.calls["AccountPropertiesGet"])
        oxatis.connect(sandbox_settings(server)).close()  # a worker's next job for the same store
        assert (server.calls["ProgressStateGetList"], server.calls["AccountPropertiesGet"]) == asked
        oxatis.connect(sandbox_settings(server, lookup_ttl=0)).close()
        assert server.calls["ProgressStateGetList"] == asked[0] + 1
        server.add_store("another-token", count=1)
        oxatis.connect({**sandbox_settings(server), "token": "another-token"}).close()  # other credentials: asked
        assert server.calls["ProgressStateGetList"] == asked[0] + 2


@pytest.mark.parametrize(
    ("base_url", "good"),
    [
        ("https://www.oxatis.com", True),
        ("http://127.0.0.1:8080/", True),
        ("https://[::1]:443/webservices", True),
        ("ftp://www.oxatis.com", False),
        ("https://", False),
        ("www.oxatis.com", False),
        ("https://www.oxatis .com", False),
        ("http://127.0.0.1:99999", False),
    ],
)
def test_the_base_url_must_be_an_http_address_with_a_host(base_url: str, good: bool) -> None:
    from channel_oxatis.settings import parse_settings

    if good:
        assert parse_settings({"token": "t", "base_url": base_url}).base_url == base_url.rstrip("/")
        return
    with pytest.raises(ConfigurationError, match=r"base_url: Not a valid URL \(an http:// or https:// address"):
        parse_settings({"token": "t", "base_url": base_url})


def test_an_order_in_a_state_created_since_the_list_was_kept_maps_to_that_state(oxatis: Channel) -> None:
    """The progress states are kept for lookup_ttl; an order moved to a state the merchant created since must
    not fall back to a status guessed from its payment: the list is asked for again, once per connection, and
    the new list is kept for the next connection."""
    with SandboxServer(SandboxConfig(count=3)) as server:
        settings = sandbox_settings(server, status_mapping={"cancelled": ["ANNULEE-BOUTIQUE"]})
        oxatis.connect(settings).close()  # the list is kept: the state below is not in it
        listed = server.calls["ProgressStateGetList"]
        server.store.create_state(72899, "ANNULEE-BOUTIQUE", "Annulée par la boutique", "Cancelled by the shop")
        for oxid in (100001, 100002):
            server.store.add_progress_state(
                oxid, code="ANNULEE-BOUTIQUE", state_id=None, when=datetime(2026, 11, 2, 9, 0), comment=None,
                publish=False, update_order=True,
            )  # fmt: skip
        with oxatis.connect(settings) as connection:
            assert server.calls["ProgressStateGetList"] == listed  # connect used the kept list
            query = OrderQuery(modified_since=datetime(2020, 1, 1, tzinfo=UTC))
            orders = {o.order_id: o for page in oxatis.fetch_orders(connection, query) for o in page.orders}
        assert orders["100001"].status == "cancelled" and orders["100001"].channel_status == "ANNULEE-BOUTIQUE"
        assert orders["100002"].status == "cancelled" and orders["100002"].channel_status == "ANNULEE-BOUTIQUE"
        assert server.calls["ProgressStateGetList"] == listed + 1  # asked once for the two orders
        with oxatis.connect(settings) as connection:  # the list asked for again was kept
            assert isinstance(connection, OxatisConnection)
            assert connection.states_by_id[72899] == "ANNULEE-BOUTIQUE"
        assert server.calls["ProgressStateGetList"] == listed + 1


def test_a_state_id_no_list_names_is_asked_for_once_per_connection(oxatis: Channel) -> None:
    with SandboxServer(SandboxConfig(count=1)) as server, oxatis.connect(sandbox_settings(server)) as connection:
        assert isinstance(connection, OxatisConnection)
        listed = server.calls["ProgressStateGetList"]
        assert connection.states_by_id.get(99999) is None
        assert 99998 not in connection.states_by_id
        assert connection.states_by_id.get(72802) == "SST-SHIPPED"
        assert server.calls["ProgressStateGetList"] == listed + 1


def test_the_shipment_guard_reads_a_state_created_since_the_list_was_kept(oxatis: Channel) -> None:
    """The guard before a write: an order the merchant moved to a cancelled state created since the list was
    kept is refused as cancelled, nothing sent, not shipped on a guess from its payment."""
    with SandboxServer(SandboxConfig(count=1)) as server:
        settings = sandbox_settings(server, status_mapping={"cancelled": ["ANNULEE-BOUTIQUE"]})
        oxatis.connect(settings).close()
        server.store.create_state(72899, "ANNULEE-BOUTIQUE", "Annulée par la boutique", "Cancelled by the shop")
        server.store.add_progress_state(
            100001, code="ANNULEE-BOUTIQUE", state_id=None, when=datetime(2026, 11, 2, 9, 0), comment=None,
            publish=False, update_order=True,
        )  # fmt: skip
        with oxatis.connect(settings) as connection, pytest.raises(InvalidShipmentError, match="ANNULEE-BOUTIQUE"):
            oxatis.notify_shipment(connection, Shipment(order_id="100001", tracking_number="6A1", carrier="Colissimo"))
        assert server.store.transport_writes[100001] == 0
