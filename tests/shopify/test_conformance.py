"""The Shopify channel runs the conformance kit against a live sandbox."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from channel_core import Shipment, ShipmentItem
from channel_core.testing import ChannelContract
from channel_shopify.sandbox import ShopifySandboxConfig, ShopifySandboxServer
from tests.shopify.conftest import DOMAIN, shop_settings
from tests.shopify.test_cassettes import CASSETTES

SECRET = "conformance-Secr3t-5e1f"


@pytest.fixture
def server() -> Iterator[ShopifySandboxServer]:
    server = ShopifySandboxServer(ShopifySandboxConfig(orders=30)).start()
    server.add_shop(DOMAIN)
    server.tenant(DOMAIN).client_secret = SECRET
    yield server
    server.stop()


class TestShopifyConformance(ChannelContract):
    channel_name = "shopify"

    @pytest.fixture
    def channel_settings(self, server: ShopifySandboxServer) -> Mapping[str, Any]:
        return shop_settings(server)

    @pytest.fixture
    def bad_settings(self, channel_settings: Mapping[str, Any]) -> Mapping[str, Any]:
        return {**channel_settings, "client_secret": "not-the-Secr3t"}

    @pytest.fixture
    def shipment(self, server: ShopifySandboxServer) -> Shipment:
        order = server.shop(DOMAIN).place_order([("A", 2, 71001), ("B", 1, 71001)])
        line = order.lines[0]
        return Shipment(
            order_id=str(order.id),
            tracking_number="6A0000000004",
            carrier="Colissimo",
            tracking_url="https://www.laposte.fr/outils/suivre-vos-envois?code=6A0000000004",
            items=(ShipmentItem(line_item_id=str(line.id), quantity=2),),
        )

    @pytest.fixture
    def packages(self, server: ShopifySandboxServer) -> list[Shipment]:
        order = server.shop(DOMAIN).place_order([("P", 3, 71001), ("Q", 1, 71001), ("R", 2, 71002)])
        items = [
            ShipmentItem(line_item_id=str(line.id), quantity=q) for line, q in zip(order.lines, (2, 1, 2), strict=True)
        ]
        return [
            Shipment(order_id=str(order.id), tracking_number="PK1", carrier="DPD", items=(items[0], items[1])),
            Shipment(order_id=str(order.id), tracking_number="PK2", carrier="DPD", items=(items[2],)),
        ]

    @pytest.fixture
    def secret_values(self) -> list[str]:
        return [SECRET, "not-the-Secr3t"]

    @pytest.fixture
    def cassette_dir(self) -> Path:
        return CASSETTES
