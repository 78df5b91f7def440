"""Carrier names as Shopify spells its supported tracking companies (case matters: only an exact name
gets Shopify's tracking link and parcel follow-up). Other names go through as free text."""

from __future__ import annotations

__all__ = ["SUPPORTED", "tracking_company"]

SUPPORTED = (
    "4PX", "Amazon Logistics UK", "Amazon Logistics US", "Australia Post", "Bluedart", "Bpost", "Canada Post",
    "China Post", "Chronopost", "Colis Privé", "Colissimo", "Correios", "Delhivery", "Deutsche Post",
    "DHL eCommerce", "DHL eCommerce Asia", "DHL Express", "DPD", "DPD Local", "DPD UK", "Evri", "FedEx", "GLS",
    "GLS (US)", "Japan Post (EN)", "La Poste", "Mondial Relay", "New Zealand Post", "Poste Italiane", "PostNL",
    "PostNord DK", "PostNord NO", "PostNord SE", "Purolator", "Royal Mail", "Sendle", "SF Express", "TNT", "UPS",
    "USPS", "Yodel",
)  # fmt: skip

_ALIASES = {
    "dhl": "DHL Express",
    "laposte": "La Poste",
    "mondialrelay": "Mondial Relay",
    "colisprive": "Colis Privé",
    "fedexground": "FedEx",
    "royalmail": "Royal Mail",
}


def _key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


_BY_KEY = {_key(name): name for name in SUPPORTED} | _ALIASES


def tracking_company(carrier: str) -> tuple[str, bool]:
    """Shopify's spelling of ``carrier`` and whether Shopify supports it (else: ``carrier`` as given)."""
    found = _BY_KEY.get(_key(carrier))
    return (found, True) if found else (carrier.strip(), False)
