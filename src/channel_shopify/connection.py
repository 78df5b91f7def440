"""ShopifyConnection: a connected shop, what ``connect`` returns."""

from __future__ import annotations

from typing import Any

from channel_core.errors import StatusMappingError
from channel_core.hooktypes import Connection, StoreStatus
from channel_core.logs import get_logger
from channel_core.models import Order, SkippedOrder
from channel_core.status import StatusMapping
from channel_shopify.client import ShopifyClient
from channel_shopify.mapping import DERIVED_CODES, derived_code, to_order
from channel_shopify.settings import ShopifySettings

__all__ = ["ShopifyConnection"]

logger = get_logger(__name__)


class ShopifyConnection(Connection):
    """A shop, its client and what ``connect`` learned: its permanent domain (the account), scopes, currency."""

    def __init__(
        self,
        *,
        settings: ShopifySettings,
        client: ShopifyClient,
        shop: dict[str, Any],
        scopes: tuple[str, ...],
        status_mapping: StatusMapping,
    ) -> None:
        super().__init__(
            channel="shopify",
            account_id=str(shop["myshopifyDomain"]).lower(),
            status_mapping=status_mapping,
            store_statuses=tuple(StoreStatus(code, name) for code, name in DERIVED_CODES),
        )
        self.settings, self.client, self.shop, self.scopes = settings, client, shop, scopes

    def map_order(self, node: dict[str, Any]) -> Order | SkippedOrder:
        code = derived_code(node)
        status = self.status_mapping.status_for(code)
        if status is None:
            self.unmapped_statuses.record(code)
            raise StatusMappingError(
                f"the order's status code {code} maps to no canonical status: add it to status_mapping"
            )
        return to_order(node, status=status, code=code)

    def close(self) -> None:
        self.client.close()
