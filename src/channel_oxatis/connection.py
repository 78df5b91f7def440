"""OxatisConnection: a connected store, what ``connect`` returns."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from channel_core.errors import NotFoundError
from channel_core.hooktypes import Connection, StoreStatus
from channel_core.models import OrderStatus
from channel_core.status import StatusMapping
from channel_oxatis.client import OxatisClient
from channel_oxatis.mapping import MappingContext
from channel_oxatis.settings import OxatisSettings

__all__ = ["OxatisConnection", "account_id_for"]


def account_id_for(settings: OxatisSettings) -> str:
    """Host plus a short one-way digest of the token: stable per store, reveals nothing."""
    digest = hashlib.blake2b(settings.token.reveal().encode(), digest_size=4, person=b"oxatis-acct").hexdigest()
    return f"{urlsplit(settings.base_url).netloc}/{digest}"


class OxatisConnection(Connection):
    def __init__(
        self,
        *,
        settings: OxatisSettings,
        client: OxatisClient,
        states: list[dict[str, Any]],
        status_mapping: StatusMapping,
    ) -> None:
        super().__init__(
            channel="oxatis",
            account_id=account_id_for(settings),
            status_mapping=status_mapping,
            store_statuses=tuple(
                StoreStatus(
                    code=s["Code"],
                    name=s.get("NameEN") or s.get("NameFR") or s["Code"],
                    channel_id=str(s["OxID"]),
                )
                for s in states
                if s.get("Code")
            ),
        )
        self.settings = settings
        self.client = client
        self.states_by_id: Mapping[int, str] = {s["OxID"]: s["Code"] for s in states if s.get("Code")}
        # log entries without Code name their state instead (oxatis-api.md §7.2)
        self.states_by_name: Mapping[str, str] = {
            str(s[key]).strip(): s["Code"]
            for s in states
            if s.get("Code")
            for key in ("NameFR", "NameEN")
            if s.get(key)
        }
        self._locations: dict[tuple[Any, Any], str | None] = {}
        self._locations_lock = threading.Lock()
        self._closed = False

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.client.close()

    @property
    def shipped_code(self) -> str:
        return self.settings.shipped_code

    def shipped_codes(self) -> tuple[str, ...]:
        return self.status_mapping.codes_for(OrderStatus.SHIPPED)

    def stock_location(self, item: Mapping[str, Any]) -> str | None:
        """The configured product characteristic's value for this line's product, cached per product."""
        name = self.settings.stock_location_characteristic
        if not name:
            return None
        key = (item.get("ItemOxID"), item.get("ItemSKU"))
        if key == (None, None):
            return None
        with self._locations_lock:
            if key in self._locations:
                return self._locations[key]
        try:
            found = self.client.product_characteristics(item.get("ItemOxID"), item.get("ItemSKU"))
        except NotFoundError:  # a product deleted since the order: the order still imports, without a location
            found = {}
        values = found.get(name) or []
        location = next((v.strip() for v in values if v and v.strip()), None)
        with self._locations_lock:
            self._locations[key] = location
        return location

    def mapping_context(self) -> MappingContext:
        return MappingContext(
            tz=self.settings.tz,
            account_country=self.settings.account_country,
            states_by_id=self.states_by_id,
            status_mapping=self.status_mapping,
            shipped_code=self.settings.shipped_code,
            unmapped=self.unmapped_statuses,
            location_for=self.stock_location if self.settings.stock_location_characteristic else None,
        )
