"""OxatisConnection: a connected store, what ``connect`` returns."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from channel_core.errors import NotFoundError
from channel_core.hooktypes import Connection, StoreStatus
from channel_core.models import OrderStatus
from channel_core.status import StatusMapping
from channel_oxatis.client import OxatisClient
from channel_oxatis.mapping import MappingContext
from channel_oxatis.settings import OxatisSettings

__all__ = ["OxatisConnection", "account_id_for", "legacy_account_id"]


def account_id_for(settings: OxatisSettings, store_account: str) -> str:
    """The web services host and the merchant's account id (``AccountPropertiesGet``): names the store, not
    the token, so a rotated token keeps its store and another merchant's token never passes for it."""
    return f"{urlsplit(settings.base_url).netloc}/account-{store_account}"


def legacy_account_id(settings: OxatisSettings) -> str:
    """The id releases before 0.2 recorded stores under: the host and a digest of the token."""
    digest = hashlib.blake2b(settings.token.reveal().encode(), digest_size=4, person=b"oxatis-acct").hexdigest()
    return f"{urlsplit(settings.base_url).netloc}/{digest}"


class ProgressStates(Mapping[int, str]):
    """The store's progress-state codes by id, as a list the connection was given (kept up to ``lookup_ttl``).

    An id the list does not name makes the connection ask the store for its list again, once: the merchant may
    have created the state since the list was kept, and an order in it must map to its state (its status, the
    shipment guard's "already shipped") rather than to a guess. ``on_refresh`` gets the new list (the plugin
    keeps it). A failed refresh raises: the order it was for fails, and is fetched again later.
    """

    def __init__(
        self,
        states: list[dict[str, Any]],
        refresh: Callable[[], list[dict[str, Any]]] | None = None,
        on_refresh: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> None:
        self._refresh, self._on_refresh = refresh, on_refresh  # _refresh: None once it was used
        self._lock = threading.Lock()
        self._load(states)

    def _load(self, states: list[dict[str, Any]]) -> None:
        self.states = states
        self._by_id: dict[int, str] = {s["OxID"]: s["Code"] for s in states if s.get("Code")}
        # log entries without Code name their state instead (oxatis-api.md §7.2)
        self.by_name: Mapping[str, str] = {
            str(s[key]).strip(): s["Code"]
            for s in states
            if s.get("Code")
            for key in ("NameFR", "NameEN")
            if s.get(key)
        }

    def __getitem__(self, state_id: int) -> str:
        code = self._by_id.get(state_id)
        if code is None and self._refresh is not None:
            with self._lock:  # the first thread asks; the others wait for its answer
                if self._refresh is not None:
                    try:
                        self._load(self._refresh())
                    finally:
                        self._refresh = None  # once per connection, whatever it gave; cleared after the load
                    if self._on_refresh is not None:
                        self._on_refresh(self.states)
            code = self._by_id.get(state_id)
        if code is None:
            raise KeyError(state_id)
        return code

    def __iter__(self) -> Iterator[int]:
        return iter(self._by_id)

    def __len__(self) -> int:
        return len(self._by_id)


class OxatisConnection(Connection):
    def __init__(
        self,
        *,
        settings: OxatisSettings,
        client: OxatisClient,
        states: list[dict[str, Any]],
        status_mapping: StatusMapping,
        store_account: str,
        refresh: Callable[[], list[dict[str, Any]]] | None = None,
        on_refresh: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> None:
        super().__init__(
            channel="oxatis",
            account_id=account_id_for(settings, store_account),
            previous_account_ids=(legacy_account_id(settings),),
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
        self.states_by_id = ProgressStates(states, refresh, on_refresh)
        self._locations: dict[tuple[Any, Any], str | None] = {}
        self._locations_lock = threading.Lock()
        self._option_types: dict[int, dict[str, Any]] = {}
        self._option_types_lock = threading.Lock()
        self._closed = False

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.client.close()

    @property
    def states_by_name(self) -> Mapping[str, str]:
        return self.states_by_id.by_name

    @property
    def shipped_code(self) -> str:
        return self.settings.shipped_code

    def shipped_codes(self) -> tuple[str, ...]:
        return self.status_mapping.codes_for(OrderStatus.SHIPPED)

    def stock_location(self, item: Mapping[str, Any]) -> str | None:
        """The configured product characteristic's value for this line's product, cached per product.

        A product's characteristics come as ids (oxatis-api.md §7.1): the option type
        whose ``SystemName`` or one of its names is the configured characteristic
        gives the value's name. Each option type is read once per connection.
        """
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
            ids = self.client.product_characteristics(item.get("ItemOxID"), item.get("ItemSKU"))
        except NotFoundError:  # a product deleted since the order: the order still imports, without a location
            ids = []
        location = None
        for pair in ids:
            type_id, value_id = pair.get("OptionTypeID"), pair.get("OptionValueID")
            if type_id is None or value_id is None:
                continue
            option_type = self._option_type(type_id)
            if not _names_it(option_type, name):
                continue
            value = next((v for v in option_type["OptionValueArray"] if v.get("OxID") == value_id), None)
            location = _display_name(value) if value is not None else None
            if location:
                break
        with self._locations_lock:
            self._locations[key] = location
        return location

    def _option_type(self, type_id: int) -> dict[str, Any]:
        with self._option_types_lock:
            cached = self._option_types.get(type_id)
            if cached is None:  # under the lock: one OptionTypesGetDetail per option type, even from many threads
                cached = self._option_types[type_id] = self.client.option_type(type_id)
        return cached

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


_NAME_KEYS = ("NameFR", "NameEN", "NameDE", "NameES", "NameIT", "NameNL", "NamePT", "NameCA")


def _names_it(entity: Mapping[str, Any], name: str) -> bool:
    wanted = name.strip().casefold()
    return any(str(entity.get(k) or "").strip().casefold() == wanted for k in ("SystemName", "Name", *_NAME_KEYS))


def _display_name(value: Mapping[str, Any]) -> str | None:
    for key in (*_NAME_KEYS, "Code", "SystemName"):
        text = str(value.get(key) or "").strip()
        if text:
            return text
    return None
