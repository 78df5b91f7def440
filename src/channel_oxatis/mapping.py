"""Oxatis wire data (validated by :mod:`channel_oxatis.schemas`) to the canonical order model.

Every rule the integration promises lives here: address choice, time zones,
status derivation, pickup points, notes, discounts, weights and stock locations.
Assumptions that no public source settles are marked ``ASSUMPTION`` with the
oxatis-api.md §6 question they answer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Any

from channel_core.models import (
    Address,
    Buyer,
    Discount,
    ItemOption,
    LineItem,
    Note,
    NoteType,
    Order,
    OrderStatus,
    Payment,
    PickupPoint,
    Shipping,
    SkippedOrder,
    Weight,
    WeightUnit,
)
from channel_core.status import StatusMapping, UnmappedCodes
from channel_oxatis import storetime

__all__ = [
    "CARRIERS",
    "COLISSIMO_PICKUP_MODES",
    "DEFAULT_STATUS_MAPPING",
    "MappingContext",
    "derived_code",
    "summary_version",
    "to_order",
]

CHANNEL = "oxatis"
NO_SHIP_TO = "no ship-to address"

DEFAULT_STATUS_MAPPING: Mapping[OrderStatus, tuple[str, ...]] = {
    OrderStatus.AWAITING_PAYMENT: ("unpaid",),
    OrderStatus.AWAITING_SHIPMENT: ("paid",),
    OrderStatus.SHIPPED: ("SST-SHIPPED",),
    OrderStatus.CANCELLED: ("cancelled",),
    OrderStatus.ON_HOLD: ("on_hold",),
}

# ShippingProcessorCode (oxatis-api.md §3.9, the longer list-filter table).
CARRIERS: Mapping[int, str] = {
    5: "store_pickup",
    10: "colissimo",
    11: "colissimo",
    12: "colissimo",
    20: "mondial_relay",
    30: "colis_prive",
    40: "tnt",
    41: "tnt",
    42: "tnt",
    50: "dpd",
    51: "dpd",
    52: "dpd",
    53: "dpd",
    54: "shippypro",
    100: "boxtal",
}
COLISSIMO = 10
MONDIAL_RELAY = 20
COLISSIMO_PICKUP_MODES = frozenset({"BPR", "A2P", "CIT", "ACP", "CDI"})  # CDI: centre de distribution (§7.3)
TNT = frozenset({40, 41, 42})
PAYMENT_CONFIRMED = 40
PAYMENT_CANCELLED = 0
PAYMENT_STATUSES: Mapping[int, str] = {
    0: "cancelled",
    10: "technical_error",
    14: "contacting_processor",
    20: "in_progress",
    30: "refused",
    40: "paid",
}
COUNTRY_NAMES: Mapping[str, str] = {
    "france": "FR",
    "france métropolitaine": "FR",
    "france metropolitaine": "FR",
    "belgique": "BE",
    "suisse": "CH",
    "luxembourg": "LU",
    "monaco": "MC",
}


@dataclass(frozen=True, slots=True)
class MappingContext:
    """What the mapping needs from the connection."""

    tz: tzinfo
    account_country: str
    states_by_id: Mapping[int, str]
    status_mapping: StatusMapping
    shipped_code: str
    unmapped: UnmappedCodes
    location_for: Callable[[Mapping[str, Any]], str | None] | None = None


def to_utc(value: datetime | None, tz: tzinfo) -> datetime | None:
    """Naive Oxatis timestamps are store-local (ASSUMPTION §6 Q6); see :mod:`channel_oxatis.storetime`."""
    return storetime.to_utc(value, tz)


def summary_version(summary: Mapping[str, Any]) -> str:
    """A version token from the summary fields; equal tokens mean no detail call is needed.

    ASSUMPTION: a change that matters to shipping moves at least one summary
    field (state, payment status, shipped flag, totals, names).
    """
    digest = hashlib.blake2b(digest_size=12)
    for key in sorted(summary):
        digest.update(f"{key}={summary[key]!s}\x1f".encode())
    return digest.hexdigest()


def _percent(rate: Any) -> str:
    """A rate as a person writes it: ``10``, ``12.5`` (never ``1E+1`` or ``10.00``)."""
    text = format(Decimal(str(rate)).normalize(), "f")
    return text


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def _join(*parts: str | None) -> str | None:
    return _clean(" ".join(p.strip() for p in parts if p and p.strip()))


@dataclass(frozen=True, slots=True)
class _AddressKeys:
    """The field names of one address of an order (``Shipping...``, ``Billing...``), spelled once."""

    block: str
    numbered: tuple[str, str, str, str]
    street: str
    building: str
    floor: str
    other: str
    country_iso: str
    country_name: str
    first_name: str
    last_name: str
    company: str
    city: str
    state_name: str
    state: str
    zip_code: str

    @classmethod
    def of(cls, p: str) -> _AddressKeys:
        return cls(
            f"{p}Address",
            (f"{p}AddressL1", f"{p}AddressL2", f"{p}AddressL3", f"{p}AddressL4"),
            f"{p}AddressStreet",
            f"{p}AddressBuilding",
            f"{p}AddressFloor",
            f"{p}AddressOtherInfo",
            f"{p}CountryISOCode",
            f"{p}CountryName",
            f"{p}FirstName",
            f"{p}LastName",
            f"{p}Company",
            f"{p}City",
            f"{p}StateName",
            f"{p}State",
            f"{p}ZipCode",
        )


_SHIPPING = _AddressKeys.of("Shipping")
_BILLING = _AddressKeys.of("Billing")


def _address_lines(raw: Mapping[str, Any], keys: _AddressKeys) -> list[str]:
    """Block first, then L1..L4, then the standardized parts (oxatis-api.md §3.3)."""
    block = _clean(raw.get(keys.block))
    if block:
        return [line.strip() for line in block.replace("\r\n", "\n").replace("\r", "\n").split("\n") if line.strip()]
    lines = [_clean(raw.get(key)) for key in keys.numbered]
    if any(lines):
        return [line for line in lines if line]
    street = _clean(raw.get(keys.street))
    building = _join(raw.get(keys.building), raw.get(keys.floor))
    other = _clean(raw.get(keys.other))
    return [line for line in (street, building, other) if line]


def _country(raw: Mapping[str, Any], keys: _AddressKeys) -> str | None:
    iso = _clean(raw.get(keys.country_iso))
    if iso:
        return iso.upper()
    name = _clean(raw.get(keys.country_name))
    return COUNTRY_NAMES.get(name.lower()) if name else None


def _address(raw: Mapping[str, Any], keys: _AddressKeys, phone: str | None) -> Address:
    lines = _address_lines(raw, keys)
    if len(lines) > 3:
        lines = [*lines[:2], ", ".join(lines[2:])]
    lines += [""] * (3 - len(lines))
    return Address(
        name=_join(raw.get(keys.first_name), raw.get(keys.last_name)),
        company=_clean(raw.get(keys.company)),
        line1=lines[0] or None,
        line2=lines[1] or None,
        line3=lines[2] or None,
        city=_clean(raw.get(keys.city)),
        state=_clean(raw.get(keys.state_name)) or _clean(raw.get(keys.state)),
        postal_code=_clean(raw.get(keys.zip_code)),
        country_code=_country(raw, keys),
        phone=phone,
    )


def derived_code(raw: Mapping[str, Any], shipped_code: str) -> str:
    """The code for an order whose state has no mapped mnemonic: shipped flag, else payment."""
    if raw.get("Shipped"):
        return shipped_code
    payment = raw.get("PaymentStatusCode")
    if payment == PAYMENT_CONFIRMED:
        return "paid"
    if payment == PAYMENT_CANCELLED:
        return "cancelled"
    return "unpaid"


def resolve_status(raw: Mapping[str, Any], ctx: MappingContext) -> tuple[OrderStatus, str] | None:
    state_id = raw.get("ProgressStateID")
    code = ctx.states_by_id.get(state_id) if state_id is not None else None
    if code is not None:
        status = ctx.status_mapping.status_for(code)
        if status is not None:
            return status, code
        ctx.unmapped.record(code)
    fallback = derived_code(raw, ctx.shipped_code)
    status = ctx.status_mapping.status_for(fallback)
    if status is None:
        ctx.unmapped.record(fallback)
        return None
    return status, fallback


def _money(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(Decimal("0.01"))


_OPTION_FIELDS = (
    ("Option1Name", "Option1Value"),
    ("Option2Name", "Option2Value"),
    ("Option3Name", "Option3Value"),
    ("Attribute1Name", "Attribute1Value"),
    ("Attribute2Name", "Attribute2Value"),
    ("AttributeTextName", "AttributeTextValue"),
)
_OPTION_NAMES = frozenset(name for name, _ in _OPTION_FIELDS)


def _options(item: Mapping[str, Any]) -> tuple[ItemOption, ...]:
    if _OPTION_NAMES.isdisjoint(item):  # most lines have none: one pass over the line's keys
        return ()
    options: list[ItemOption] = []
    for name_key, value_key in _OPTION_FIELDS:
        name, value = _clean(item.get(name_key)), _clean(item.get(value_key))
        if name and value:
            options.append(ItemOption(name, value))
    return tuple(options)


def _weight(value: Decimal | None) -> Weight | None:
    """ASSUMPTION §6 Q7: TotalWeight and line Weight are grams."""
    if value is None:
        return None
    return Weight(value, WeightUnit.GRAM)


def _line_items(raw: Mapping[str, Any], ctx: MappingContext) -> tuple[list[LineItem], list[Discount], list[str]]:
    lines: list[LineItem] = []
    discounts: list[Discount] = []
    coupons: list[str] = []
    for index, item in enumerate(raw.get("OrderItems") or (), start=1):
        line_id = str(item["OxID"]) if item.get("OxID") is not None else str(index)
        quantity = item.get("Quantity") or 0
        unit_price = item.get("NetPrice")
        if unit_price is None:
            unit_price = item.get("GrossPrice") or Decimal(0)
        location = ctx.location_for(item) if ctx.location_for is not None else None
        lines.append(
            LineItem(
                line_item_id=line_id,
                product_id=str(item["ItemOxID"]) if item.get("ItemOxID") is not None else None,
                sku=_clean(item.get("ItemSKU")),
                name=_clean(item.get("ItemName")) or "",
                quantity=quantity,
                unit_price=_money(unit_price) or Decimal("0.00"),
                weight=_weight(item.get("Weight")),
                image_url=_clean(item.get("ItemMainImageUrl")) or _clean(item.get("ItemThumbnailImageUrl")),
                options=_options(item),
                location=location,
            )
        )
        coupon = _clean(item.get("DiscountCoupon"))
        gross, net = item.get("GrossAmount"), item.get("NetAmount")
        if coupon or (item.get("DiscountRate") and gross is not None and net is not None and gross > net):
            amount = _money(gross - net) if gross is not None and net is not None else Decimal("0.00")
            discounts.append(Discount(coupon, amount or Decimal("0.00"), f"line {line_id} discount"))
        if coupon:
            coupons.append(coupon)
        for b_index, bundled in enumerate(item.get("BundledItems") or (), start=1):
            bundled_id = bundled.get("OxID")
            lines.append(
                LineItem(
                    line_item_id=f"{line_id}.{bundled_id if bundled_id is not None else b_index}",
                    product_id=str(bundled["ItemOxID"]) if bundled.get("ItemOxID") is not None else None,
                    sku=_clean(bundled.get("ItemSKU")),
                    name=_clean(bundled.get("ItemName")) or "",
                    quantity=bundled.get("Quantity") or 0,
                    unit_price=Decimal("0.00"),
                    image_url=_clean(bundled.get("ItemMainImageUrl")),
                    options=(
                        *_options(bundled),
                        ItemOption("bundle", _clean(item.get("ItemSKU")) or line_id),
                    ),
                    location=ctx.location_for(bundled) if ctx.location_for is not None else None,
                )
            )
    return lines, discounts, coupons


def _pickup_point(raw: Mapping[str, Any], ctx: MappingContext) -> PickupPoint | None:
    """Pickup points are a France-based-account feature (Colissimo modes, Mondial Relay, TNT relays)."""
    if ctx.account_country != "FR":
        return None
    processor = raw.get("ShippingProcessorCode")
    mode = _clean(raw.get("ShippingParam1"))
    point = _clean(raw.get("ShippingParam2"))
    if processor == COLISSIMO and mode in COLISSIMO_PICKUP_MODES and point:
        return PickupPoint("colissimo", point, mode)
    if processor == MONDIAL_RELAY and point:
        return PickupPoint("mondial_relay", point, mode)
    if processor in TNT and point:  # a collection point id in ShippingParam2 (oxatis-api.md §7.3)
        return PickupPoint("tnt", point, mode)
    return None


def _notes(raw: Mapping[str, Any]) -> tuple[Note, ...]:
    notes = []
    for key, kind in (
        ("SpecialInstructions", NoteType.FROM_BUYER),
        ("Comment", NoteType.OTHER),
        ("ShippingInfo", NoteType.SHIPPING_INSTRUCTIONS),
        ("GiftMessage", NoteType.GIFT_MESSAGE),
        ("InternalNote", NoteType.INTERNAL),
    ):
        text = _clean(raw.get(key))
        if text:
            notes.append(Note(kind, text))
    return tuple(notes)


def to_order(raw: Mapping[str, Any], ctx: MappingContext) -> Order | SkippedOrder:
    """Map one validated ``Order`` to the canonical model, or say why it cannot be imported."""
    order_id = str(raw["OxID"])
    ship_phone = _clean(raw.get("ShippingPhone"))
    ship_to = _address(raw, _SHIPPING, ship_phone)
    if ship_to.is_empty():
        return SkippedOrder(order_id, NO_SHIP_TO)
    created = to_utc(raw.get("Date"), ctx.tz)
    if created is None:
        return SkippedOrder(order_id, "order has no Date")
    status = resolve_status(raw, ctx)
    if status is None:
        return SkippedOrder(order_id, "order status could not be mapped")
    payment_code = raw.get("PaymentStatusCode")
    payment_date = to_utc(raw.get("PaymentStatusLastModifiedDate"), ctx.tz)
    paid_at = payment_date if payment_code == PAYMENT_CONFIRMED else None
    modified_candidates = [
        created,
        payment_date,
        to_utc(raw.get("DispatchDate"), ctx.tz),
        to_utc(raw.get("InvoiceDate"), ctx.tz),
        to_utc(raw.get("DateOfPicking"), ctx.tz),
    ]
    modified = max(d for d in modified_candidates if d is not None)
    items, line_discounts, line_coupons = _line_items(raw, ctx)
    discounts = list(line_discounts)
    cart_coupon = _clean(raw.get("CartCoupon"))
    global_amount = raw.get("GlobalDiscountAmount")
    if (global_amount and global_amount > 0) or cart_coupon:
        rate = raw.get("GlobalDiscountRate")
        description = f"order discount {_percent(rate)}%" if rate else "order discount"
        discounts.insert(0, Discount(cart_coupon, _money(global_amount) or Decimal("0.00"), description))
    coupons = tuple(dict.fromkeys([c for c in (cart_coupon, *line_coupons) if c]))
    shipping_amount = raw.get("ShippingPriceTaxIncl")
    if shipping_amount is None and raw.get("ShippingPriceTaxExcl") is not None:
        shipping_amount = raw["ShippingPriceTaxExcl"] + (raw.get("ShippingVATAmount") or 0)
    method = _clean(raw.get("PaymentMethodName"))
    processor = raw.get("ShippingProcessorCode")
    gift_message = _clean(raw.get("GiftMessage"))
    bill_phone = _clean(raw.get("BillingPhone")) or _clean(raw.get("BillingCellPhone"))
    return Order(
        channel=CHANNEL,
        order_id=order_id,
        order_number=order_id,
        status=status[0],
        channel_status=status[1],
        created_at=created,
        modified_at=modified,
        paid_at=paid_at,
        currency=_clean(raw.get("CurrencyCode")),
        buyer=Buyer(
            name=_join(raw.get("BillingFirstName"), raw.get("BillingLastName")),
            email=_clean(raw.get("UserEmail")),
            phone=ship_phone or bill_phone,
            customer_id=str(raw["UserOxID"]) if raw.get("UserOxID") is not None else None,
        ),
        bill_to=_address(raw, _BILLING, bill_phone),
        ship_to=ship_to,
        items=tuple(items),
        payment=Payment(
            method=None if method == "NC" else method,
            status=PAYMENT_STATUSES.get(payment_code) if payment_code is not None else None,
            amount_paid=_money(raw.get("NetAmountDue")) if payment_code == PAYMENT_CONFIRMED else None,
            shipping_amount=_money(shipping_amount),
            tax_amount=_money(raw.get("SubTotalVAT")),
            discounts=tuple(discounts),
            coupon_codes=coupons,
        ),
        shipping=Shipping(
            requested_service=_clean(raw.get("ShippingMethodName")),
            carrier_code=CARRIERS.get(processor) if processor is not None else None,
            pickup_point=_pickup_point(raw, ctx),
            is_gift=bool(raw.get("Gift")),
            gift_message=gift_message,
        ),
        notes=_notes(raw),
        weight=_weight(raw.get("TotalWeight")),
    )
