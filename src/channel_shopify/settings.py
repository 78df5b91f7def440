"""The settings a merchant gives to connect a Shopify shop."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from channel_core.errors import ConfigurationError
from channel_core.hooktypes import SettingSpec
from channel_core.secret import Secret

__all__ = ["DEFAULT_API_VERSION", "SETTING_SPECS", "ShopifySettings", "parse_settings"]

DEFAULT_API_VERSION = "2026-04"  # the version the sandbox's schema subset is checked against
SHOP_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,59}\.myshopify\.com$")
API_VERSION = re.compile(r"^20\d\d-(01|04|07|10)$")

SETTING_SPECS = (
    SettingSpec("shop", required=True, env="SHOPIFY_SHOP", help="The shop's permanent domain, name.myshopify.com"),
    SettingSpec("api_version", default=DEFAULT_API_VERSION, help="Admin API version (pinned; quarterly YYYY-MM)"),
    SettingSpec(
        "base_url", default=None, env="SHOPIFY_BASE_URL", help="API root (default https://{shop}); a sandbox's URL"
    ),
    SettingSpec("access_token", secret=True, env="SHOPIFY_ACCESS_TOKEN", help="An Admin API access token (shpat_...)"),
    SettingSpec("client_id", env="SHOPIFY_CLIENT_ID", help="The app's client id (client credentials or refresh grant)"),
    SettingSpec("client_secret", secret=True, env="SHOPIFY_CLIENT_SECRET", help="The app's client secret"),
    SettingSpec(
        "refresh_token",
        secret=True,
        env="SHOPIFY_REFRESH_TOKEN",
        help="An expiring offline token's refresh token; it rotates on every use and the host keeps the new one",
    ),
    SettingSpec(
        "webhook_secret",
        secret=True,
        env="SHOPIFY_WEBHOOK_SECRET",
        help="The app's client secret, to verify webhooks when the store connects with an access_token",
    ),
    SettingSpec(
        "status_mapping",
        type="mapping",
        default=None,
        help="Canonical status -> derived Shopify codes (CANCELLED, FULFILLED, PENDING, ON_HOLD, UNFULFILLED...)",
    ),
    SettingSpec("notify_customer", type="bool", default=False, help="Default for Shipment.notify_buyer"),
    SettingSpec("index_lag", type="float", default=5.0, help="Seconds the order search may run behind edits"),
    SettingSpec("depth_cap", type="int", default=25000, help="How deep one orders listing may be paged"),
    SettingSpec("max_query_cost", type="int", default=1000, help="The single query cost limit"),
    SettingSpec("timeout", type="float", default=30.0, help="Read timeout in seconds"),
    SettingSpec("retry_attempts", type="int", default=5, help="Attempts per call on transient faults"),
    SettingSpec("retry_backoff", type="float", default=0.5, help="First backoff wait in seconds (doubles)"),
    SettingSpec(
        "lookup_ttl",
        type="float",
        default=3600.0,
        help="Seconds the shop and the app's access scopes are kept between connections (0: ask each time)",
    ),
)


@dataclass(frozen=True, slots=True)
class ShopifySettings:
    shop: str
    api_version: str = DEFAULT_API_VERSION
    base_url: str = ""
    access_token: Secret | None = None
    client_id: str | None = None
    client_secret: Secret | None = None
    refresh_token: Secret | None = None
    webhook_secret: Secret | None = None
    status_mapping: Mapping[str, Any] = field(default_factory=dict)
    notify_customer: bool = False
    index_lag: float = 5.0
    depth_cap: int = 25000
    max_query_cost: int = 1000
    timeout: float = 30.0
    retry_attempts: int = 5
    retry_backoff: float = 0.5
    lookup_ttl: float = 3600.0

    @property
    def grant(self) -> str:
        """How tokens are obtained: ``refresh_token``, ``client_credentials`` or ``static``."""
        if self.refresh_token is not None:
            return "refresh_token"
        if self.client_secret is not None:
            return "client_credentials"
        return "static"

    def __repr__(self) -> str:
        return f"ShopifySettings(shop={self.shop!r}, api_version={self.api_version!r}, grant={self.grant!r})"


def _secret(value: Any) -> Secret | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, Secret) else Secret(str(value))


def _number(settings: Mapping[str, Any], name: str, kind: type, default: Any, minimum: float) -> Any:
    raw = settings.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        raise ConfigurationError(f"shopify setting {name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigurationError(f"shopify setting {name} must be at least {minimum}, got {raw!r}")
    return value


def parse_settings(settings: Mapping[str, Any]) -> ShopifySettings:
    """Validate raw settings; every problem names the setting and what is expected."""
    known = {spec.name for spec in SETTING_SPECS}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigurationError(
            f"unknown shopify setting(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    shop = str(settings.get("shop") or "").strip().lower()
    if not shop:
        raise ConfigurationError(
            "shopify setting shop is missing: the shop's domain, name.myshopify.com (SHOPIFY_SHOP)"
        )
    if shop.startswith(("http://", "https://")):
        shop = shop.split("://", 1)[1].rstrip("/")
    if not SHOP_NAME.match(shop):
        raise ConfigurationError(
            f"shopify setting shop must be the shop's permanent domain, name.myshopify.com (lower-case letters, "
            f"digits and '-'), got {settings.get('shop')!r}"
        )
    version = str(settings.get("api_version") or DEFAULT_API_VERSION)
    if not API_VERSION.match(version):
        raise ConfigurationError(
            f"shopify setting api_version must be a quarterly version like 2026-04, got {version!r}"
        )
    base_url = str(settings.get("base_url") or f"https://{shop}").rstrip("/")
    if not base_url.startswith(("http://", "https://")):
        raise ConfigurationError(f"shopify setting base_url must be an http(s) URL, got {base_url!r}")
    access_token = _secret(settings.get("access_token"))
    client_id = str(settings["client_id"]) if settings.get("client_id") else None
    client_secret = _secret(settings.get("client_secret"))
    refresh_token = _secret(settings.get("refresh_token"))
    if (client_id is None) != (client_secret is None):
        raise ConfigurationError("shopify settings client_id and client_secret go together: set both or neither")
    if refresh_token is not None and client_id is None:
        raise ConfigurationError("shopify setting refresh_token needs client_id and client_secret to be refreshed")
    if access_token is None and client_id is None:
        raise ConfigurationError(
            "shopify needs credentials: access_token (SHOPIFY_ACCESS_TOKEN), or client_id and client_secret "
            "(SHOPIFY_CLIENT_ID, SHOPIFY_CLIENT_SECRET) for the client credentials grant"
        )
    mapping = settings.get("status_mapping") or {}
    if not isinstance(mapping, Mapping):
        raise ConfigurationError("shopify setting status_mapping must be a table of status = [codes]")
    return ShopifySettings(
        shop=shop,
        api_version=version,
        base_url=base_url,
        access_token=access_token,
        client_id=client_id,
        client_secret=client_secret,
        refresh_token=refresh_token,
        webhook_secret=_secret(settings.get("webhook_secret")),
        status_mapping=dict(mapping),
        notify_customer=str(settings.get("notify_customer", False)).lower() in ("true", "1", "yes"),
        index_lag=_number(settings, "index_lag", float, 5.0, 0.0),
        depth_cap=_number(settings, "depth_cap", int, 25000, 2),
        max_query_cost=_number(settings, "max_query_cost", int, 1000, 50),
        timeout=_number(settings, "timeout", float, 30.0, 0.1),
        retry_attempts=_number(settings, "retry_attempts", int, 5, 1),
        retry_backoff=_number(settings, "retry_backoff", float, 0.5, 0.0),
        lookup_ttl=_number(settings, "lookup_ttl", float, 3600.0, 0.0),
    )
