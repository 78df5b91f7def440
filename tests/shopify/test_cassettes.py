"""Replaying cassettes recorded from the Shopify sandbox, offline (record mode none, network blocked).

``pytest --record-cassettes tests/shopify`` re-records them from a fresh sandbox: the shop's domain
and ids are deterministic (one seed), the minted tokens are scrubbed, and the request URIs are shown
going to ``https://sandbox-shop.myshopify.com`` as a real shop's would.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from channel_core import Channel, NotificationStatus, OrderQuery, Shipment, ShipmentItem
from channel_core.testing.cassettes import build_vcr, cassette_config
from channel_shopify.sandbox import ShopifySandboxConfig, ShopifySandboxServer
from tests.shopify.conftest import DOMAIN

CASSETTES = Path(__file__).resolve().parents[2] / "cassettes" / "shopify"
PRODUCTION = f"https://{DOMAIN}"
REPLAY = {"shop": DOMAIN, "base_url": PRODUCTION, "client_id": "replay-client", "client_secret": "replay-secret"}


@contextmanager
def cassette(config: pytest.Config, name: str) -> Iterator[tuple[dict[str, Any], ShopifySandboxServer | None]]:
    record = bool(config.getoption("--record-cassettes"))
    server = None
    settings = dict(REPLAY)
    secrets: list[str] = []
    if record:
        server = ShopifySandboxServer(ShopifySandboxConfig(orders=12, seed=11)).start()
        tenant = server.add_shop(DOMAIN)
        settings = {**REPLAY, "base_url": server.base_url(DOMAIN), "client_id": tenant.client_id}
        settings["client_secret"] = tenant.client_secret
        secrets = [tenant.client_secret]
    options = cassette_config(
        production_base_url=PRODUCTION,
        secret_form_fields=("client_id", "client_secret", "refresh_token"),
        secret_values=secrets,
        secret_json_fields=("access_token", "refresh_token"),
        strip_path_prefix=f"/shops/{DOMAIN}",
        record_mode="all" if record else "none",
    )
    try:
        with build_vcr(str(CASSETTES), **options).use_cassette(f"{name}.yaml"):
            yield settings, server
    finally:
        if server is not None:
            server.stop()


def test_import_and_ship_replay_from_a_cassette(request: pytest.FixtureRequest, shopify: Channel) -> None:
    with cassette(request.config, "import_and_ship") as (settings, _):
        with shopify.connect(settings) as connection:
            pages = list(shopify.fetch_orders(connection, OrderQuery(modified_since=datetime(2020, 1, 1, tzinfo=UTC))))
            orders = [o for p in pages for o in p.orders]
            skipped = [s for p in pages for s in p.skipped]
            assert len(orders) + len(skipped) == 12 and len(pages) >= 2
            target, line = next(
                (o, x)
                for o in orders
                for g in o.fulfillment_groups
                if g.status == "OPEN"
                for x in g.lines
                if x.remaining
            )
            shipment = Shipment(
                order_id=target.order_id,
                tracking_number="6A0000000777",
                carrier="Colissimo",
                items=(ShipmentItem(line_item_id=line.line_item_id, quantity=line.remaining),),
            )
            assert shopify.notify_shipment(connection, shipment).status is NotificationStatus.SENT
            assert shopify.notify_shipment(connection, shipment).status is NotificationStatus.ALREADY_SENT


def test_the_cassettes_hold_no_token_and_name_the_production_shop() -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(CASSETTES.glob("*.yaml")))
    assert text, "no Shopify cassette recorded"
    assert "shpat_" not in text and "sandbox-secret" not in text and "127.0.0.1" not in text
    assert f"uri: {PRODUCTION}/admin/api/2026-04/graphql.json" in text
    assert f"uri: {PRODUCTION}/admin/oauth/access_token" in text
