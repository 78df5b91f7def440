"""Deterministic synthetic orders for a French Oxatis store.

Order ``n`` (1-based) is computed from ``(seed, n)`` alone, so a store of
100,000 orders costs nothing until an order is asked for. Features are spread
by index so that every store of 50 orders or more holds every case the
integration must handle; :data:`FEATURE_INDEXES` names where each lives.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

__all__ = [
    "DEFAULT_ANCHOR",
    "FEATURE_INDEXES",
    "PRODUCTS",
    "STATES",
    "Product",
    "created_at",
    "generate_order",
    "order_id_for",
]

FIRST_ORDER_ID = 100001
DEFAULT_ANCHOR = datetime(2026, 11, 1, 9, 0, 0)  # store-local, naive
ORDER_SPACING = timedelta(minutes=17)
PAYMENT_DELAY = timedelta(minutes=4)
DISPATCH_DELAY = timedelta(minutes=10)  # every generated date stays within DISPATCH_DELAY of creation

# (OxID, Code, NameFR, NameEN): SST-SHIPPED plus custom codes, store-specific ids.
STATES: tuple[tuple[int, str, str, str], ...] = (
    (72801, "SST-NEW", "Nouvelle commande", "New order"),
    (72802, "SST-SHIPPED", "Expédiée", "Shipped"),
    (72803, "PRECOMMANDE", "Précommande", "Pre-order"),
    (72804, "EN-PREPA", "En préparation", "Being prepared"),
    (72805, "on_hold", "En attente", "On hold"),
    (72806, "cancelled", "Annulée", "Cancelled"),
)
STATE_IDS = {code: oxid for oxid, code, _, _ in STATES}

FEATURE_INDEXES = {
    "colissimo_pickup": 3,  # n % 10 == 3: modes cycle BPR, A2P, CIT, ACP, CDI
    "mondial_relay": 4,  # n % 10 == 4
    "colissimo_home": 5,  # n % 10 == 5
    "tnt_relay": 6,  # n % 10 == 6: TNT (processor 41) with a collection point in ShippingParam2 (§7.3)
    "no_ship_to": 7,  # n % 25 == 7
    "gift": 1,  # n % 6 == 1
    "coupon": 2,  # n % 5 == 2
    "bundle": 5,  # n % 8 == 5
}

FIRST_NAMES = (
    "Émilie",
    "Jean",
    "Chloé",
    "François",
    "Zoé",
    "Loïc",
    "Hélène",
    "Noël",
    "Anaïs",
    "Rémi",
    "Inès",
    "Gaël",
)
LAST_NAMES = (
    "Dupont",
    "Lefèvre",
    "Moreau",
    "Rousseau",
    "Girard",
    "Fournier",
    "Mercier",
    "Bonnet",
    "Lambert",
    "Faure",
)
COMPANIES = ("Société Dupont & Fils", "Atelier L'Épi", "Café <Le Zinc>", "SARL Bière & Co")
STREETS = (
    "rue de la Paix",
    "avenue Jean-Jaurès",
    "boulevard Saint-Michel",
    "impasse des Tilleuls",
    "chemin du Moulin",
    "place de l'Église",
    "rue Pasteur",
    "quai Gambetta",
)
CITIES = (
    ("01230", "Saint-Rambert-en-Bugey"),
    ("06000", "Nice"),
    ("09100", "Pamiers"),
    ("75011", "Paris"),
    ("69003", "Lyon"),
    ("13001", "Marseille"),
    ("04000", "Digne-les-Bains"),
    ("33000", "Bordeaux"),
)
PAYMENT_METHODS = ("Carte bancaire", "PayPal", "Virement bancaire", "Chèque", "NC")
SHIP_METHODS = {
    "colissimo_pickup": "Colissimo Point Retrait",
    "mondial_relay": "Mondial Relay Point Relais",
    "colissimo_home": "Colissimo Domicile",
    "tnt_relay": "TNT Relais Colis",
    "plain": "Livraison standard",
}
COLISSIMO_MODES = ("BPR", "A2P", "CIT", "ACP", "CDI")


@dataclass(frozen=True, slots=True)
class Product:
    oxid: int
    sku: str
    name: str
    price: Decimal
    weight: int
    location: str
    options: tuple[tuple[str, str], ...]


def _products() -> tuple[Product, ...]:
    rng = random.Random("oxatis-sandbox-catalog")
    names = (
        "Tasse émaillée",
        "Torchon lin & coton",
        "Bougie parfumée",
        "Carnet A5",
        "Savon d'Alep",
        "Tote bag",
        "Théière fonte",
        "Plaid laine",
        "Affiche 50x70",
        "Mug <Édition limitée>",
    )
    products = []
    for i in range(40):
        name = names[i % len(names)]
        options: tuple[tuple[str, str], ...] = ()
        if i % 3 == 0:
            options = (
                ("Couleur", rng.choice(("Rouge", "Bleu nuit", "Vert d'eau"))),
                ("Taille", rng.choice(("S", "M", "L"))),
            )
        elif i % 3 == 1:
            options = (("Couleur", rng.choice(("Écru", "Noir"))),)
        products.append(
            Product(
                oxid=500100 + i,
                sku=f"{i:05d}" if i % 4 == 0 else f"SKU-{i:03d}",
                name=f"{name} n°{i}",
                price=Decimal(rng.randrange(390, 8990)) / 100,
                weight=rng.randrange(80, 2400),
                location=f"{'ABC'[i % 3]}-{i % 12 + 1:02d}-{i % 5 + 1}",
                options=options,
            )
        )
    return tuple(products)


PRODUCTS = _products()
PRODUCTS_BY_OXID = {p.oxid: p for p in PRODUCTS}


def order_id_for(n: int) -> int:
    return FIRST_ORDER_ID + n - 1


def created_at(n: int, count: int, anchor: datetime = DEFAULT_ANCHOR) -> datetime:
    """Creation time of order ``n``; strictly increasing in ``n``."""
    return anchor - ORDER_SPACING * (count - n)


def _money(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"))


def _address(rng: random.Random, style: int, prefix: str, first: str, last: str) -> dict[str, Any]:
    number = rng.randrange(1, 180)
    street = f"{number} {rng.choice(STREETS)}"
    extra = rng.choice(("Bâtiment B", "Résidence Les Lilas", "Appartement 12", None))
    zip_code, city = rng.choice(CITIES)
    out: dict[str, Any] = {f"{prefix}FirstName": first, f"{prefix}LastName": last}
    if rng.random() < 0.2:
        out[f"{prefix}Company"] = rng.choice(COMPANIES)
    if style == 0:  # the multi-line block
        out[f"{prefix}Address"] = street + (f"\r\n{extra}" if extra else "")
    elif style == 1:  # lines L1..L4
        out[f"{prefix}AddressL1"] = street
        if extra:
            out[f"{prefix}AddressL2"] = extra
    else:  # standardized parts
        out[f"{prefix}AddressStreet"] = street
        if extra:
            out[f"{prefix}AddressOtherInfo"] = extra
    out[f"{prefix}ZipCode"] = zip_code
    out[f"{prefix}City"] = city
    out[f"{prefix}CountryISOCode"] = "FR"
    out[f"{prefix}CountryName"] = "France métropolitaine"
    return out


def generate_order(seed: int, n: int, count: int, anchor: datetime = DEFAULT_ANCHOR) -> dict[str, Any]:
    """The wire fields of order ``n`` as Python values (``None`` means omitted)."""
    rng = random.Random(f"{seed}:{n}")
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    created = created_at(n, count, anchor)
    payment = 40 if rng.random() < 0.78 else rng.choice((0, 14, 20, 30))
    currency = "CHF" if n % 37 == 11 else "GBP" if n % 53 == 13 else "EUR"
    order: dict[str, Any] = {
        "OxID": order_id_for(n),
        "Date": created,
        "BillingFirstName": first,
        "BillingLastName": last,
        "PaymentStatusCode": payment,
        "FollowUp": False,
        "SourceTypeID": 0,
        "UserEmail": f"{first.lower()}.{last.lower()}{n}@exemple.fr".replace("é", "e")
        .replace("ï", "i")
        .replace("ë", "e")
        .replace("è", "e")
        .replace("ç", "c")
        .replace("É", "e"),
        "UserOxID": 900000 + rng.randrange(1, 5000),
        "BillingPhone": f"0{rng.randrange(1, 6)}{rng.randrange(10**7, 10**8)}",
        "Language": "fr",
        "CurrencyCode": currency,
        "VATIncluded": True,
        "PaymentMethodName": rng.choice(PAYMENT_METHODS),
        "PMProcessorCode": rng.choice((1, 7, 12)),
    }
    if payment in (0, 30, 40):
        order["PaymentStatusLastModifiedDate"] = created + PAYMENT_DELAY
    order.update(_address(rng, n % 3, "Billing", first, last))
    ship_first, ship_last = (first, last) if rng.random() < 0.8 else (rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES))
    if n % 25 != FEATURE_INDEXES["no_ship_to"]:
        order.update(_address(rng, (n + 1) % 3, "Shipping", ship_first, ship_last))
        order["ShippingPhone"] = f"06{rng.randrange(10**7, 10**8)}"
    # shipping method and carrier module
    kind = {3: "colissimo_pickup", 4: "mondial_relay", 5: "colissimo_home", 6: "tnt_relay"}.get(n % 10, "plain")
    order["ShippingID"] = {
        "colissimo_pickup": 31,
        "mondial_relay": 32,
        "colissimo_home": 30,
        "tnt_relay": 34,
        "plain": 33,
    }[kind]
    order["ShippingMethodName"] = SHIP_METHODS[kind]
    if kind == "colissimo_pickup":
        order["ShippingProcessorCode"] = 10
        order["ShippingParam1"] = COLISSIMO_MODES[(n // 10) % len(COLISSIMO_MODES)]
        order["ShippingParam2"] = f"{rng.randrange(10**5, 10**6):06d}"
    elif kind == "colissimo_home":
        order["ShippingProcessorCode"] = 10
        order["ShippingParam1"] = "DOM"
    elif kind == "mondial_relay":
        order["ShippingProcessorCode"] = 20
        order["ShippingParam2"] = f"0{rng.randrange(10**4, 10**5)}"
    elif kind == "tnt_relay":
        order["ShippingProcessorCode"] = 41
        order["ShippingParam2"] = f"T{(n * 7919) % 100000:05d}"  # no random draw: other orders stay as they were
    if n % 7 == 2:
        order["ShippingInfo"] = "Sonner à l'interphone, 2e étage"
    if n % 4 == 1:
        order["SpecialInstructions"] = "Merci de bien emballer : c'est fragile & précieux"
    if n % 9 == 4:
        order["InternalNote"] = "Client fidèle — ajouter un échantillon"
    if n % 6 == FEATURE_INDEXES["gift"]:
        order["Gift"] = True
        order["GiftMessage"] = "Joyeux anniversaire <3 & bises"
    # lines
    lines = []
    subtotal = Decimal(0)
    vat = Decimal(0)
    total_weight = 0
    line_count = 1 + rng.randrange(4)
    for line_no in range(line_count):
        product = PRODUCTS[rng.randrange(len(PRODUCTS))]
        quantity = 1 + rng.randrange(3)
        discount_rate = Decimal(10) if (n % 5 == FEATURE_INDEXES["coupon"] and line_no == 0) else Decimal(0)
        net_price = _money(product.price * (1 - discount_rate / 100))
        item: dict[str, Any] = {
            "OxID": order_id_for(n) * 10 + line_no + 1,
            "ItemOxID": product.oxid,
            "ItemSKU": product.sku,
            "ItemSKUOriginal": product.sku,
            "ItemName": product.name,
            "GrossPrice": product.price,
            "GrossAmount": _money(product.price * quantity),
            "TaxRate": Decimal(20),
            "DiscountRate": discount_rate,
            "NetPrice": net_price,
            "NetAmount": _money(net_price * quantity),
            "VATAmount": _money(net_price * quantity / 6),
            "EcoTaxValueTaxIncl": Decimal(0),
            "ItemMainImageUrl": f"https://www.boutique-exemple.fr/Files/1234/Img/{product.oxid}_1.jpg",
            "ItemThumbnailImageUrl": f"https://www.boutique-exemple.fr/Files/1234/Img/{product.oxid}_t.jpg",
            "Offered": False,
            "Weight": product.weight,
            "Quantity": quantity,
        }
        if discount_rate:
            item["DiscountCoupon"] = "BIENVENUE10"
        for index, (name, value) in enumerate(product.options, start=1):
            item[f"Option{index}Name"] = name
            item[f"Option{index}Value"] = value
        if n % 11 == 6 and line_no == 0:
            item["AttributeTextName"] = "Gravure"
            item["AttributeTextValue"] = "Pour Léa & Tom"
        if n % 8 == FEATURE_INDEXES["bundle"] and line_no == 0:
            parts = [PRODUCTS[(product.oxid + k) % len(PRODUCTS)] for k in (1, 2)]
            item["ItemName"] = f"Coffret {product.name}"
            item["BundledItems"] = [
                {
                    "OxID": item["OxID"] * 10 + k,
                    "ItemOxID": p.oxid,
                    "ItemSKU": p.sku,
                    "ItemName": p.name,
                    "GrossPrice": p.price,
                    "Offered": False,
                    "Quantity": quantity,
                }
                for k, p in enumerate(parts, start=1)
            ]
        lines.append(item)
        subtotal += item["NetAmount"]
        vat += item["VATAmount"]
        total_weight += product.weight * quantity
    shipping_price = Decimal("0.00") if kind == "mondial_relay" else Decimal("6.90")
    global_discount = Decimal("5.00") if n % 5 == FEATURE_INDEXES["coupon"] else Decimal(0)
    order.update(
        {
            "SubTotalVAT": _money(vat),
            "ShippingPriceTaxExcl": _money(shipping_price / Decimal("1.2")),
            "ShippingVATAmount": _money(shipping_price - shipping_price / Decimal("1.2")),
            "NetAmountDue": _money(subtotal - global_discount + shipping_price),
            "SubTotalNet": _money(subtotal),
            "SubTotalNetDiscounted": _money(subtotal - global_discount),
            "ShippingTaxRate": Decimal(20),
            "ShippingPriceTaxIncl": shipping_price,
            "TotalWeight": total_weight,
            "OrderItems": lines,
        }
    )
    if global_discount:
        order["GlobalDiscountAmount"] = global_discount
        order["GlobalDiscountRate"] = Decimal(0)
        order["CartCoupon"] = "BIENVENUE10"
    # progress state: most orders have none (status derives from payment), some carry custom states
    state_pick = n % 12
    if state_pick == 9:
        order["ProgressStateID"] = STATE_IDS["PRECOMMANDE"]
    elif state_pick == 10:
        order["ProgressStateID"] = STATE_IDS["SST-NEW"]
    elif state_pick == 11 and payment == 40:
        order["ProgressStateID"] = STATE_IDS["on_hold"]
    elif state_pick == 8 and payment == 40:
        order["ProgressStateID"] = STATE_IDS["SST-SHIPPED"]
        order["Shipped"] = True
        order["DispatchDate"] = created + DISPATCH_DELAY
        order["TransportName"] = "Colissimo"
        order["TrackingNumber"] = f"6A{rng.randrange(10**10, 10**11)}"
        order["TrackingUrl"] = f"https://www.laposte.fr/outils/suivre-vos-envois?code={order['TrackingNumber']}"
    else:
        order["Shipped"] = False
    return order


# Option types and values (OptionTypesServices, oxatis-api.md §7.1): what product characteristics point at.
LOCATION_TYPE_ID = 9001
MATERIAL_TYPE_ID = 9002
LOCATIONS = sorted({p.location for p in PRODUCTS})
LOCATION_VALUE_IDS = {location: 91000 + i for i, location in enumerate(LOCATIONS)}
MATERIAL_VALUE_ID = 92001


def option_types() -> dict[int, dict[str, Any]]:
    """Every option type the store defines, with its values, as ``OptionTypesGetDetail`` returns them."""
    return {
        LOCATION_TYPE_ID: {
            "OxID": LOCATION_TYPE_ID,
            "NameEN": "Location",
            "NameFR": "Emplacement",
            "SystemName": "EMPLACEMENT",
            "OptionValueArray": [
                {"OxID": value_id, "Code": location, "NameEN": location, "NameFR": location, "SystemName": location}
                for location, value_id in LOCATION_VALUE_IDS.items()
            ],
        },
        MATERIAL_TYPE_ID: {
            "OxID": MATERIAL_TYPE_ID,
            "NameEN": "Material",
            "NameFR": "Matière",
            "SystemName": "MATIERE",
            "OptionValueArray": [
                {"OxID": MATERIAL_VALUE_ID, "Code": "COTON", "NameEN": "Organic cotton", "NameFR": "Coton bio"}
            ],
        },
    }
