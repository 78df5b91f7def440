"""The sandbox store's state: generated orders plus everything written to them since.

Unmodified orders are generated on demand; only changed orders and appended
progress-state log entries are kept. Every modification stamps the order with
the current time, which is what the ``OrderDateStart``/``OrderDateEnd`` window
filters on (oxatis-api.md §2.2: "last sales order modification").
"""

from __future__ import annotations

import bisect
import threading
import zoneinfo
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from channel_oxatis.sandbox import data

__all__ = ["LIST_ORDERS", "SandboxStore"]


LIST_ORDERS = ("modified", "created")


class SandboxStore:
    """Thread-safe. Times are naive store-local datetimes, as Oxatis sends them.

    :param clock: the store's clock as aware instants (default: the host's,
        shifted by ``clock_skew`` seconds). Modification stamps are its naive
        wall time in ``timezone``: on the autumn night they repeat an hour, as a
        database column of local times does.
    :param list_order: what the summary list sorts on; oxatis-api.md §6 leaves open
        whether it is the modification or the creation time.
    :param visible: how many of the ``count`` generated orders exist at first;
        :meth:`create_order` places the others one by one.
    :param account_id: the merchant's account id (``AccountPropertiesGet``).
    :param stamp_lag: seconds the database that stamps orders runs behind the web server whose clock
        the ``Date`` header gives (public sources do not bound it).
    """

    def __init__(
        self,
        *,
        count: int = 200,
        seed: int = 7,
        anchor: datetime = data.DEFAULT_ANCHOR,
        timezone: str = "Europe/Paris",
        with_shipped_state: bool = True,
        wrong_type_order: int | None = None,
        clock: Callable[[], datetime] | None = None,
        clock_skew: float = 0.0,
        list_order: str = "modified",
        visible: int | None = None,
        account_id: int = 41001,
        stamp_lag: float = 0.0,
    ) -> None:
        if list_order not in LIST_ORDERS:
            raise ValueError(f"list_order must be one of {', '.join(LIST_ORDERS)}")
        if count < 0:
            raise ValueError("count must not be negative")
        self.count = count
        self.account_id = account_id  # what AccountPropertiesGet answers: the merchant's account
        self.stamp_lag = timedelta(seconds=stamp_lag)
        self._deleted: set[int] = set()
        self.visible = count if visible is None else max(0, min(count, visible))
        self.seed = seed
        self.anchor = anchor
        self.tz = zoneinfo.ZoneInfo(timezone)
        self.with_shipped_state = with_shipped_state
        self.created_states: list[tuple[int, str, str, str]] = []  # created in the back office since start
        self.wrong_type_order = wrong_type_order
        skew = timedelta(seconds=clock_skew)
        self._clock = clock or (lambda: datetime.now(UTC) + skew)
        self.list_order = list_order
        self._lock = threading.RLock()
        self._overrides: dict[int, dict[str, Any]] = {}
        self._modified: dict[int, datetime] = {}
        self._extra_logs: dict[int, list[dict[str, Any]]] = {}
        self.transport_writes: Counter[int] = Counter()  # OrderUpdateTransportInfo calls applied, per order
        self._next_log_id = 880001
        self._version = 0
        self._window_cache: tuple[tuple[Any, ...], list[int]] | None = None

    # ------------------------------------------------------------------ identity

    def n_for(self, oxid: int) -> int | None:
        n = oxid - data.FIRST_ORDER_ID + 1
        return n if 1 <= n <= self.visible and n not in self._deleted else None

    def instant(self) -> datetime:
        """The store's clock now, an aware UTC instant (what its ``Date`` header says)."""
        return self._clock().astimezone(UTC)

    def web_now(self) -> datetime:
        """The naive wall time of the clock the ``Date`` header reads (the web server's)."""
        return self.instant().astimezone(self.tz).replace(tzinfo=None)

    def now(self) -> datetime:
        """The store's naive wall time now, as its database stamps modifications (``stamp_lag`` behind the
        web server's ``Date`` header)."""
        return (self.instant() - self.stamp_lag).astimezone(self.tz).replace(tzinfo=None)

    # ------------------------------------------------------------------ reads

    def create_state(self, oxid: int, code: str, name_fr: str, name_en: str) -> None:
        """A progress state the merchant creates in the back office (listed from now on)."""
        with self._lock:
            self.created_states.append((oxid, code, name_fr, name_en))

    def states(self) -> list[dict[str, Any]]:
        states = []
        for oxid, code, name_fr, name_en in [*data.STATES, *self.created_states]:
            if code == "SST-SHIPPED" and not self.with_shipped_state:
                continue
            states.append(
                {
                    "OxID": oxid,
                    "Color": "#3A7BD5",
                    "Code": code,
                    "NameFR": name_fr,
                    "NameEN": name_en,
                    "Publish": True,
                    "SendMail": code == "SST-SHIPPED",
                    "UpdateOrders": True,
                    "CreateInvoice": False,
                }
            )
        return states

    def order(self, oxid: int) -> dict[str, Any] | None:
        n = self.n_for(oxid)
        if n is None:
            return None
        order = data.generate_order(self.seed, n, self.count, self.anchor)
        with self._lock:
            order.update(self._overrides.get(n, {}))
        if self.wrong_type_order == oxid and order.get("OrderItems"):
            order["OrderItems"][0]["Quantity"] = "deux"
        return order

    def _base_modified(self, n: int) -> datetime:
        return data.created_at(n, self.count, self.anchor) + data.DISPATCH_DELAY

    def modified_at(self, n: int) -> datetime:
        with self._lock:
            return self._modified.get(n) or self._base_modified(n)

    def window(self, start: datetime | None, end: datetime | None) -> list[int]:
        """Order numbers modified in ``[start, end]``, oldest first by ``list_order``."""
        with self._lock:
            key = (start, end, self._version)
            if self._window_cache is not None and self._window_cache[0] == key:
                return self._window_cache[1]
            numbers = range(1, self.visible + 1)
            lo = 0 if start is None else bisect.bisect_left(numbers, start, key=self._base_modified)
            hi = len(numbers) if end is None else bisect.bisect_right(numbers, end, key=self._base_modified)
            base = [n for n in numbers[lo:hi] if n not in self._modified and n not in self._deleted]
            moved = sorted(
                (when, n)
                for n, when in self._modified.items()
                if (start is None or when >= start) and (end is None or when <= end) and n not in self._deleted
            )
            if self.list_order == "created":
                result = sorted(base + [n for _, n in moved])
            elif moved:
                merged = [(self._base_modified(n), n) for n in base] + moved
                merged.sort()
                result = [n for _, n in merged]
            else:
                result = base
            self._window_cache = (key, result)
            return result

    def logs(self, oxid: int) -> list[dict[str, Any]]:
        order = self.order(oxid)
        if order is None:
            return []
        entries: list[dict[str, Any]] = []
        n = self.n_for(oxid)
        assert n is not None
        base_state = data.generate_order(self.seed, n, self.count, self.anchor).get("ProgressStateID")
        if base_state is not None:
            code = {sid: c for sid, c, _, _ in data.STATES}[base_state]
            entries.append(self._log_entry(700000 + n, oxid, base_state, code, order["Date"], None, True))
        with self._lock:
            entries.extend(self._extra_logs.get(oxid, []))
        return entries

    def _log_entry(
        self,
        log_id: int,
        oxid: int,
        state_id: int,
        code: str,
        when: datetime,
        comment: str | None,
        published: bool,
    ) -> dict[str, Any]:
        names = {sid: (fr, en) for sid, _, fr, en in (*data.STATES, *self.created_states)}[state_id]
        return {
            "OxID": log_id,
            "ProgressStateNameEN": names[1],
            "Color": "#3A7BD5",
            "OrderID": oxid,
            "Date": when,
            "ProgressStateName": names[0],
            "Comment": comment,
            "Published": published,
            "ID": state_id,
            "Code": code,
        }

    def characteristics(self, item_oxid: int | None, sku: str | None) -> dict[str, Any] | None:
        """A product's characteristics as ids (``CharacteristicsIdEntity``, oxatis-api.md §7.1)."""
        product = data.PRODUCTS_BY_OXID.get(item_oxid) if item_oxid is not None else None
        if product is None and sku:
            product = next((p for p in data.PRODUCTS if p.sku == sku), None)
        if product is None:
            return None
        return {
            "ProductID": product.oxid,
            "CharacteristicID": [
                {"OptionTypeID": data.MATERIAL_TYPE_ID, "OptionValueID": data.MATERIAL_VALUE_ID},
                {"OptionTypeID": data.LOCATION_TYPE_ID, "OptionValueID": data.LOCATION_VALUE_IDS[product.location]},
            ],
        }

    def option_type(self, oxid: int | None) -> dict[str, Any] | None:
        return data.option_types().get(oxid) if oxid is not None else None

    # ------------------------------------------------------------------ writes

    def create_order(self) -> int | None:
        """Publish the next generated order as placed now (``visible`` < ``count``); its OxID, or None.

        Its ``Date`` is the store's clock when it was placed, like its modification stamp.
        """
        with self._lock:
            if self.visible >= self.count:
                return None
            self.visible += 1
            n = self.visible
            now = self.now()
            self._modified[n] = now
            self._overrides.setdefault(n, {})["Date"] = now.replace(microsecond=0)
            self._version += 1
        return data.order_id_for(n)

    def delete_order(self, oxid: int) -> None:
        """The merchant deletes an order: it leaves every listing and ``OrderGet`` answers "not found"."""
        n = self.n_for(oxid)
        if n is None:
            raise KeyError(oxid)
        with self._lock:
            self._deleted.add(n)
            self._version += 1

    def modify(self, oxid: int, changes: dict[str, Any], *, when: datetime | None = None) -> None:
        """Change fields of an order and stamp its modification time (tests and fault switches use this)."""
        n = self.n_for(oxid)
        if n is None:
            raise KeyError(oxid)
        stamp = when or self.now()
        with self._lock:
            self._overrides.setdefault(n, {}).update(changes)
            previous = self._modified.get(n) or self._base_modified(n)
            # a wall-clock stamp: it may go back on the autumn night; equal stamps are made distinct
            self._modified[n] = stamp if stamp != previous else previous + timedelta(microseconds=1)
            self._version += 1

    def set_transport(
        self, oxid: int, *, tracking_number: str | None, tracking_url: str | None, transport_name: str | None
    ) -> None:
        changes = {
            k: v
            for k, v in (
                ("TrackingNumber", tracking_number),
                ("TrackingUrl", tracking_url),
                ("TransportName", transport_name),
            )
            if v is not None
        }
        with self._lock:
            self.transport_writes[oxid] += 1
        self.modify(oxid, changes)

    def add_progress_state(
        self,
        oxid: int,
        *,
        code: str | None,
        state_id: int | None,
        when: datetime,
        comment: str | None,
        publish: bool,
        update_order: bool,
    ) -> int | None:
        """Append a log entry; move the order to the state when ``update_order``. ``None`` if the state is unknown."""
        states = {s["Code"]: s["OxID"] for s in self.states()}
        ids = {v: k for k, v in states.items()}
        if code is not None and code in states:
            state_id = states[code]
        elif state_id is not None and state_id in ids:
            code = ids[state_id]
        else:
            return None
        assert state_id is not None and code is not None
        with self._lock:
            log_id = self._next_log_id
            self._next_log_id += 1
            self._extra_logs.setdefault(oxid, []).append(
                self._log_entry(log_id, oxid, state_id, code, when, comment, publish)
            )
        if update_order:
            changes: dict[str, Any] = {"ProgressStateID": state_id}
            if code == "SST-SHIPPED":
                changes.update({"Shipped": True, "DispatchDate": when})
            self.modify(oxid, changes)
        return log_id

    def shipped_entries(self, oxid: int) -> int:
        return sum(1 for entry in self.logs(oxid) if entry["Code"] == "SST-SHIPPED")
