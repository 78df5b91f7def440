"""The sandbox's shops: orders, fulfillment orders and fulfillments as Shopify keeps them, and what a
merchant does in the admin meanwhile (edits, holds, cancellations, fulfilling lines by hand).

Ids are the numbers at the end of Shopify's gids; one counter per shop gives every object its own.
Statuses are derived as Shopify derives them (``displayFulfillmentStatus`` from the fulfillment
orders). Every change stamps ``updatedAt`` with the shop's clock and records, for the search index,
when it happened (the ``search_lag`` switch shows the listing an older ``updatedAt``).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

__all__ = ["FoLine", "Fulfillment", "FulfillmentOrder", "Line", "SandboxShop", "ShopOrder", "UserErrors"]

LOCATIONS = {71001: "Paris warehouse", 71002: "Lyon store"}
LOCATION_ADDRESSES = {
    71001: {"address1": "14 rue des Entrepôts", "city": "Paris", "zip": "75019", "countryCode": "FR"},
    71002: {"address1": "3 place Bellecour", "city": "Lyon", "zip": "69002", "countryCode": "FR"},
}
FIRST_NAMES = ["Camille", "Louis", "Léa", "Hugo", "Chloé", "Jules", "Manon", "Lucas", "Zoé", "Nathan"]
LAST_NAMES = ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau"]
CITIES = [("Paris", "75011"), ("Lyon", "69002"), ("Marseille", "13001"), ("Lille", "59000"), ("Nantes", "44000")]
PRODUCTS = [
    ("TEE-BLK", "Organic tee", 1, "2", True, False, 180),
    ("MUG-01", "Stoneware mug", 0, "14.50", True, False, 420),
    ("CAP-RED", "Canvas cap", 1, "19.90", True, False, 90),
    ("GIFT-25", "Gift card", 0, "25.00", False, True, 0),
    ("EBOOK-1", "Field guide (e-book)", 0, "9.99", False, False, 0),
    ("BAG-TOTE", "Tote bag", 1, "12.00", True, False, 150),
]
SIZES = ["S", "M", "L", "XL"]


class UserErrors(Exception):
    """A mutation's refusal: ``userErrors`` with ``field`` and ``message``, as Shopify words them."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(e["message"] for e in errors))
        self.errors = errors


@dataclass
class Line:
    id: int
    sku: str | None
    title: str
    variant_title: str | None
    quantity: int
    price: Decimal
    requires_shipping: bool
    is_gift_card: bool
    grams: int
    options: list[tuple[str, str]]
    image: str | None
    variant_id: int
    product_id: int
    current_quantity: int = -1

    def __post_init__(self) -> None:
        if self.current_quantity < 0:
            self.current_quantity = self.quantity

    @property
    def name(self) -> str:
        return f"{self.title} - {self.variant_title}" if self.variant_title else self.title


@dataclass
class FoLine:
    id: int
    line_id: int
    total: int
    remaining: int


@dataclass
class FulfillmentOrder:
    id: int
    location_id: int
    status: str
    method: str
    lines: list[FoLine]
    updated_at: datetime
    hold: str | None = None
    request_status: str = "UNSUBMITTED"

    def line(self, fo_line_id: int) -> FoLine | None:
        return next((x for x in self.lines if x.id == fo_line_id), None)


@dataclass
class Fulfillment:
    id: int
    name: str
    location_id: int
    created_at: datetime
    lines: list[tuple[int, int, int]]  # (fulfillment line id, order line id, quantity)
    tracking: list[tuple[str | None, str | None, str | None]]  # (company, number, url)
    status: str = "SUCCESS"
    notified: bool = False


@dataclass
class ShopOrder:
    id: int
    number: int
    created_at: datetime
    updated_at: datetime
    financial: str
    email: str | None
    phone: str | None
    note: str | None
    tags: list[str]
    ship_to: dict[str, Any] | None
    bill_to: dict[str, Any] | None
    shipping_line: dict[str, Any] | None
    discount_codes: list[str]
    discount_total: Decimal
    shipping_price: Decimal
    tax: Decimal
    lines: list[Line]
    fulfillment_orders: list[FulfillmentOrder]
    customer: dict[str, Any] | None
    currency: str = "EUR"
    gateways: list[str] = field(default_factory=lambda: ["shopify_payments"])
    cancelled_at: datetime | None = None
    closed: bool = False
    fulfillments: list[Fulfillment] = field(default_factory=list)
    history: list[tuple[datetime, datetime]] = field(default_factory=list)  # (edit time, updatedAt then)

    @property
    def gid(self) -> str:
        return f"gid://shopify/Order/{self.id}"

    @property
    def name(self) -> str:
        return f"#{self.number}"

    @property
    def total(self) -> Decimal:
        items = sum((line.price * line.current_quantity for line in self.lines), Decimal(0))
        return items + self.shipping_price + self.tax - self.discount_total

    def fulfillment_status(self) -> str:
        shippable = [fo for fo in self.fulfillment_orders if fo.status != "CANCELLED"]
        total = sum(x.total for fo in shippable for x in fo.lines)
        left = sum(x.remaining for fo in shippable for x in fo.lines)
        if total and left == 0:
            return "FULFILLED"
        if left < total:
            return "PARTIALLY_FULFILLED"
        open_ones = [fo for fo in shippable if fo.status not in ("CLOSED",)]
        if open_ones and all(fo.status == "ON_HOLD" for fo in open_ones):
            return "ON_HOLD"
        return "UNFULFILLED"


class SandboxShop:
    """One shop: its orders and the lock every read and write takes.

    :param clock: the shop's clock (aware UTC), which stamps ``updatedAt`` and the ``Date`` header.
    :param search_lag: seconds the search index (the ``query:`` filter and the ``UPDATED_AT`` sort) runs
        behind edits (``shopify-api.md`` §9).
    :param write_touch_delay: seconds after a fulfillment or a tracking update before it moves
        ``Order.updatedAt`` (§9: whether it does "at once").
    """

    def __init__(
        self,
        domain: str,
        *,
        shop_id: int,
        clock: Callable[[], datetime],
        search_lag: float = 0.0,
        write_touch_delay: float = 0.0,
    ) -> None:
        self.domain, self.shop_id, self.clock = domain, shop_id, clock
        self.name = domain.split(".", 1)[0].replace("-", " ").title()
        self.search_lag = timedelta(seconds=search_lag)
        self.write_touch_delay = timedelta(seconds=write_touch_delay)
        self._due_touches: list[tuple[datetime, int]] = []  # (when, order id): writes not yet stamped
        self.orders: dict[int, ShopOrder] = {}
        self.lock = threading.RLock()
        self._next_id = 5_000_000_000 + shop_id * 1_000_000
        self.scopes = [
            "read_orders",
            "write_merchant_managed_fulfillment_orders",
            "read_merchant_managed_fulfillment_orders",
        ]
        self.fulfillments_created = 0
        self.tracking_updates = 0
        self.on_change: Callable[[str, dict[str, Any]], None] | None = None  # (topic, body): webhooks

    # ------------------------------------------------------------------ ids and stamps

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def touch(self, order: ShopOrder, *, when: datetime | None = None, topic: str = "orders/updated") -> None:
        now = when or self.clock()
        stamp = max(now, order.updated_at)  # updatedAt never goes back
        order.history.append((now, stamp))
        order.updated_at = stamp
        self.emit(topic, {"id": order.id, "admin_graphql_api_id": order.gid, "updated_at": stamp.isoformat()})

    def emit(self, topic: str, body: dict[str, Any]) -> None:
        if self.on_change is not None:
            self.on_change(topic, body)

    def _touch_after_write(self, order: ShopOrder, when: datetime | None) -> None:
        if not self.write_touch_delay or when is not None:
            self.touch(order, when=when)
        else:
            self._due_touches.append((self.clock() + self.write_touch_delay, order.id))

    def apply_due_touches(self) -> None:
        """Stamp the writes whose delay has passed, at the instant they were due."""
        with self.lock:
            now = self.clock()
            due = [t for t in self._due_touches if t[0] <= now]
            self._due_touches = [t for t in self._due_touches if t[0] > now]
            for when, order_id in sorted(due):
                if order_id in self.orders:
                    self.touch(self.orders[order_id], when=when)

    def indexed_updated_at(self, order: ShopOrder, now: datetime) -> datetime | None:
        """``updatedAt`` as the search index shows it now (``None``: the order is not indexed yet)."""
        if not self.search_lag:
            return order.updated_at
        seen = now - self.search_lag
        visible = [stamp for when, stamp in order.history if when <= seen]
        return visible[-1] if visible else None

    # ------------------------------------------------------------------ seeded orders

    def seed(self, count: int, seed: int, *, start: datetime | None = None) -> None:
        rng = random.Random(seed)
        now = self.clock()
        start = start or now - timedelta(days=40)
        span = (now - timedelta(minutes=5) - start).total_seconds()
        for index in range(count):
            created = start + timedelta(seconds=span * (index + rng.random()) / max(1, count))
            self.create_order(rng, created=created.replace(microsecond=0), number=1001 + index)

    def create_order(
        self, rng: random.Random, *, created: datetime | None = None, number: int | None = None
    ) -> ShopOrder:
        with self.lock:
            created = created or self.clock()
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            city, postcode = rng.choice(CITIES)
            kind = rng.random()
            method = "SHIPPING"
            if kind < 0.06:
                method = "PICK_UP"
            elif kind < 0.14:
                method = "PICKUP_POINT"
            address = {
                "name": f"{first} {last}",
                "firstName": first,
                "lastName": last,
                "company": "Atelier Nord" if rng.random() < 0.1 else None,
                "address1": f"{rng.randint(1, 120)} rue de la République",
                "address2": "Bâtiment B" if rng.random() < 0.2 else None,
                "city": city,
                "province": None,
                "provinceCode": None,
                "zip": postcode,
                "countryCodeV2": "FR",
                "phone": f"+3361234{rng.randint(1000, 9999)}",
            }
            lines = []
            physical = [p for p in PRODUCTS if p[4]]
            picks = rng.sample(physical, rng.randint(1, 3))
            if rng.random() < 0.1:
                picks.append(rng.choice([p for p in PRODUCTS if not p[4]]))  # a gift card or an e-book besides
            if rng.random() < 0.03:
                picks = [PRODUCTS[3]]  # a gift card alone: nothing to ship
            for sku, title, with_size, price, ships, gift, grams in picks:
                size = rng.choice(SIZES) if with_size else None
                lines.append(
                    Line(
                        id=self.new_id(),
                        sku=f"{sku}-{size}" if size else sku,
                        title=title,
                        variant_title=size,
                        quantity=rng.randint(1, 3),
                        price=Decimal(price),
                        requires_shipping=ships,
                        is_gift_card=gift,
                        grams=grams,
                        options=[("Size", size)] if size else [],
                        image=f"https://cdn.shopify.com/s/files/1/{sku.lower()}.jpg" if ships else None,
                        variant_id=self.new_id(),
                        product_id=self.new_id(),
                    )
                )
            shipping_line = None
            if method == "SHIPPING":
                service = rng.choice([("Colissimo", "colissimo-home", "9.90"), ("Chronopost 13h", "chrono13", "14.90")])
                shipping_line = {
                    "title": service[0],
                    "code": service[1],
                    "carrier": None,
                    "source": "shopify",
                    "price": service[2],
                }
            elif method == "PICKUP_POINT":
                shipping_line = {
                    "title": "Mondial Relay - Point Relais",
                    "code": f"MR-{rng.randint(10000, 99999)}",
                    "carrier": "mondialrelay",
                    "source": "mondial_relay",
                    "price": "4.90",
                }
            else:
                shipping_line = {
                    "title": "Retrait en magasin",
                    "code": "pickup",
                    "carrier": None,
                    "source": "shopify",
                    "price": "0.00",
                }
            financial = rng.choices(["PAID", "PENDING", "AUTHORIZED", "PARTIALLY_REFUNDED"], [80, 8, 8, 4])[0]
            order = ShopOrder(
                id=self.new_id(),
                number=number or (1001 + len(self.orders)),
                created_at=created,
                updated_at=created,
                financial=financial,
                email=f"{first.lower()}.{last.lower()}@example.com",
                phone=address["phone"] if rng.random() < 0.5 else None,
                note="Merci de livrer après 18h" if rng.random() < 0.15 else None,
                tags=sorted(rng.sample(["vip", "wholesale", "gift", "fragile"], rng.randint(0, 2))),
                ship_to=None if method == "PICK_UP" else address,
                bill_to=dict(address),
                shipping_line=shipping_line,
                discount_codes=["WELCOME10"] if rng.random() < 0.2 else [],
                discount_total=Decimal("0"),
                shipping_price=Decimal(str(shipping_line["price"])),
                tax=Decimal("0"),
                lines=lines,
                fulfillment_orders=[],
                customer={"id": self.new_id(), "displayName": f"{first} {last}", "email": None, "phone": None},
            )
            if order.discount_codes:
                order.discount_total = (sum((x.price * x.quantity for x in lines), Decimal(0)) / 10).quantize(
                    Decimal("0.01")
                )
            shippable = [x for x in lines if x.requires_shipping]
            split = len(shippable) > 1 and rng.random() < 0.25
            groups: dict[int, list[Line]] = {}
            for i, line in enumerate(shippable):
                location = 71002 if split and i % 2 else 71001
                groups.setdefault(location, []).append(line)
            self._open_groups(order, groups, method, created)
            order.history.append((created, created))
            self.orders[order.id] = order
            self.emit("orders/create", {"id": order.id, "admin_graphql_api_id": order.gid})
            roll = rng.random()
            if roll < 0.05:
                self.hold(
                    order.fulfillment_orders[0].id if order.fulfillment_orders else 0, "Awaiting stock", when=created
                )
            elif roll < 0.08:
                self.cancel(order.id, when=created)
            elif roll < 0.2 and order.fulfillment_orders:
                fo = order.fulfillment_orders[0]
                self.fulfill(
                    order.id,
                    [(fo.id, [(x.id, x.remaining) for x in fo.lines])],
                    tracking=("La Poste", f"6A{rng.randint(10**9, 10**10 - 1)}", None),
                    when=created,
                )
            return order

    def place_order(
        self, items: list[tuple[str, int, int]], *, method: str = "SHIPPING", financial: str = "PAID"
    ) -> ShopOrder:
        """An order of ``(sku, quantity, location id)`` lines, one fulfillment order per location (tests)."""
        with self.lock:
            rng = random.Random(len(self.orders))
            order = self.create_order(rng)
            order.lines, order.fulfillment_orders, order.fulfillments = [], [], []
            order.cancelled_at, order.closed, order.financial = None, False, financial
            groups: dict[int, list[Line]] = {}
            for sku, quantity, location in items:
                line = Line(
                    id=self.new_id(),
                    sku=sku,
                    title=f"Product {sku}",
                    variant_title=None,
                    quantity=quantity,
                    price=Decimal("10.00"),
                    requires_shipping=True,
                    is_gift_card=False,
                    grams=250,
                    options=[],
                    image=None,
                    variant_id=self.new_id(),
                    product_id=self.new_id(),
                )
                order.lines.append(line)
                groups.setdefault(location, []).append(line)
            self._open_groups(order, groups, method, self.clock())
            self.touch(order)
            return order

    def _open_groups(self, order: ShopOrder, groups: dict[int, list[Line]], method: str, when: datetime) -> None:
        """One open fulfillment order per location, holding all of each line it ships from there."""
        for location, lines in groups.items():
            order.fulfillment_orders.append(
                FulfillmentOrder(
                    id=self.new_id(),
                    location_id=location,
                    status="OPEN",
                    method=method,
                    lines=[FoLine(self.new_id(), x.id, x.quantity, x.quantity) for x in lines],
                    updated_at=when,
                )
            )

    # ------------------------------------------------------------------ what a merchant does

    def order(self, order_id: int) -> ShopOrder:
        order = self.orders.get(order_id)
        if order is None:
            raise KeyError(order_id)
        return order

    def find_fo(self, fo_id: int) -> tuple[ShopOrder, FulfillmentOrder] | None:
        for order in self.orders.values():
            for fo in order.fulfillment_orders:
                if fo.id == fo_id:
                    return order, fo
        return None

    def edit(self, order_id: int, *, note: str | None = None, when: datetime | None = None) -> ShopOrder:
        with self.lock:
            order = self.order(order_id)
            order.note = note if note is not None else f"edited {len(order.history)}"
            self.touch(order, when=when)
            return order

    def hold(self, fo_id: int, reason: str, *, when: datetime | None = None) -> None:
        with self.lock:
            found = self.find_fo(fo_id)
            if found is None:
                return
            order, fo = found
            fo.status, fo.hold = "ON_HOLD", reason
            fo.updated_at = when or self.clock()
            self.touch(order, when=when)
            gid = f"gid://shopify/FulfillmentOrder/{fo.id}"
            self.emit("fulfillment_orders/placed_on_hold", {"fulfillment_order": {"id": gid, "status": "ON_HOLD"}})

    def release(self, fo_id: int) -> None:
        with self.lock:
            found = self.find_fo(fo_id)
            if found is None:
                return
            order, fo = found
            fo.status, fo.hold = "OPEN", None
            self.touch(order)

    def cancel(self, order_id: int, *, when: datetime | None = None) -> None:
        """Cancel as Shopify does: fulfillment orders close, remaining quantities stay (see the captures)."""
        with self.lock:
            order = self.order(order_id)
            order.cancelled_at = when or self.clock()
            order.closed = True
            for fo in order.fulfillment_orders:
                if fo.status != "CLOSED":
                    fo.status = "CLOSED"
            self.touch(order, when=when)

    def delete(self, order_id: int) -> None:
        with self.lock:
            self.orders.pop(order_id, None)

    def fulfill(
        self,
        order_id: int,
        requests: list[tuple[int, list[tuple[int, int]] | None]],
        *,
        tracking: tuple[str | None, str | None, str | None] = (None, None, None),
        notify: bool = False,
        when: datetime | None = None,
    ) -> Fulfillment:
        """Create a fulfillment as ``fulfillmentCreate`` does: every check first, then every change.

        :param requests: per fulfillment order id, ``(fulfillment order line id, quantity)`` pairs, or
            ``None`` for everything it has left.
        :raises UserErrors: worded as Shopify words them (captures: fulfillment-create-preconditions).
        """
        with self.lock:
            errors: list[dict[str, Any]] = []
            picked: list[tuple[FulfillmentOrder, FoLine, int]] = []
            locations = set()
            for index, (fo_id, lines) in enumerate(requests):
                found = self.find_fo(fo_id)
                if found is None or found[0].id != order_id:
                    errors.append({"field": ["fulfillment"], "message": "Fulfillment order does not exist."})
                    continue
                _, fo = found
                if fo.status in ("CLOSED", "CANCELLED", "ON_HOLD", "INCOMPLETE"):
                    errors.append(
                        {
                            "field": ["fulfillment"],
                            "message": f"Fulfillment order {fo.id} has an unfulfillable status= {fo.status.lower()}.",
                        }
                    )
                    continue
                locations.add(fo.location_id)
                wanted = [(x.id, x.remaining) for x in fo.lines if x.remaining] if lines is None else lines
                for position, (line_id, quantity) in enumerate(wanted):
                    where = [
                        "fulfillment",
                        "lineItemsByFulfillmentOrder",
                        str(index),
                        "fulfillmentOrderLineItems",
                        str(position),
                        "quantity",
                    ]
                    fo_line = fo.line(line_id)
                    if quantity <= 0:
                        errors.append({"field": where, "message": "Quantity must be greater than 0"})
                    elif fo_line is None or quantity > fo_line.remaining:
                        errors.append(
                            {
                                "field": ["fulfillment"],
                                "message": "Invalid fulfillment order line item quantity requested.",
                            }
                        )
                    else:
                        picked.append((fo, fo_line, quantity))
            if len(locations) > 1:
                errors.append(
                    {
                        "field": ["fulfillment"],
                        "message": "All fulfillment orders must be assigned to the same location.",
                    }
                )
            if not errors and not picked:
                errors.append(
                    {"field": ["fulfillment"], "message": "Invalid fulfillment order line item quantity requested."}
                )
            if errors:
                raise UserErrors(errors)
            order = self.order(order_id)
            now = when or self.clock()
            for fo, fo_line, quantity in picked:
                fo_line.remaining -= quantity
                fo.updated_at = now
                if all(x.remaining == 0 for x in fo.lines):
                    fo.status = "CLOSED"
                elif fo.status == "OPEN":
                    fo.status = "IN_PROGRESS"
            fulfillment = Fulfillment(
                id=self.new_id(),
                name=f"{order.name}-F{len(order.fulfillments) + 1}",
                location_id=picked[0][0].location_id,
                created_at=now,
                lines=[(self.new_id(), fo_line.line_id, quantity) for _, fo_line, quantity in picked],
                tracking=[tracking] if any(tracking) else [],
                notified=notify,
            )
            order.fulfillments.append(fulfillment)
            self.fulfillments_created += 1
            self._touch_after_write(order, when)
            return fulfillment

    def update_tracking(
        self, fulfillment_id: int, tracking: tuple[str | None, str | None, str | None], *, notify: bool = False
    ) -> tuple[ShopOrder, Fulfillment]:
        with self.lock:
            for order in self.orders.values():
                for fulfillment in order.fulfillments:
                    if fulfillment.id == fulfillment_id:
                        if fulfillment.status == "CANCELLED":
                            raise UserErrors([{"field": ["fulfillmentId"], "message": "Fulfillment is cancelled."}])
                        fulfillment.tracking = [tracking]
                        fulfillment.notified = fulfillment.notified or notify
                        self.tracking_updates += 1
                        self._touch_after_write(order, None)
                        return order, fulfillment
            raise UserErrors([{"field": ["fulfillmentId"], "message": "Fulfillment does not exist."}])
