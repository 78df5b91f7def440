"""The settings a merchant gives to connect an Oxatis store, validated with marshmallow."""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates

from channel_core.errors import ConfigurationError
from channel_core.hooktypes import SettingSpec
from channel_core.secret import Secret

__all__ = ["DEFAULT_BASE_URL", "SETTING_SPECS", "OxatisSettings", "parse_settings"]

DEFAULT_BASE_URL = "https://webservices.oxatis.com"
DEFAULT_SHIPPED_CODE = "SST-SHIPPED"

SETTING_SPECS = (
    SettingSpec(
        "token",
        required=True,
        secret=True,
        env="OXATIS_TOKEN",
        help="Web-services token from Oxatis back office > Access rights management",
    ),
    SettingSpec("app_id", secret=True, env="OXATIS_APP_ID", help="Our Oxatis ISV AppId, when Oxatis issued one"),
    SettingSpec("base_url", default=DEFAULT_BASE_URL, env="OXATIS_BASE_URL", help="Web services root URL"),
    SettingSpec(
        "status_mapping",
        type="mapping",
        default=None,
        help="Canonical status -> Oxatis progress-state codes, merged with the defaults",
    ),
    SettingSpec(
        "shipped_code",
        default=DEFAULT_SHIPPED_CODE,
        help="Progress-state mnemonic written when an order ships",
    ),
    SettingSpec(
        "store_timezone",
        default="UTC",
        env="OXATIS_STORE_TIMEZONE",
        help="Time zone of the store's naive timestamps (IANA name; UTC as ShipStation advises, often Europe/Paris)",
    ),
    SettingSpec("account_country", default="FR", help="ISO country of the Oxatis account; pickup points need FR"),
    SettingSpec(
        "stock_location_characteristic",
        default=None,
        help="Product characteristic holding the stock location",
    ),
    SettingSpec("notify_customer", type="bool", default=False, help="Publish the shipped state and e-mail the buyer"),
    SettingSpec("page_size", type="int", default=50, help="Orders per list page"),
    SettingSpec("max_concurrency", type="int", default=8, help="Detail calls in flight"),
    SettingSpec("requests_per_second", type="float", default=50.0, help="Request-rate limit for the account"),
    SettingSpec("timeout", type="float", default=30.0, help="Read timeout in seconds"),
    SettingSpec("retry_attempts", type="int", default=5, help="Attempts per call on transient faults"),
    SettingSpec("retry_backoff", type="float", default=0.5, help="First backoff wait in seconds (doubles)"),
    SettingSpec(
        "lookup_ttl",
        type="float",
        default=3600.0,
        help="Seconds the store's account and progress states are kept between connections (0: ask each time); "
        "an order in a state the kept list lacks makes the connection ask for the list again",
    ),
)


@dataclass(frozen=True, slots=True)
class OxatisSettings:
    token: Secret
    app_id: Secret | None = None
    base_url: str = DEFAULT_BASE_URL
    status_mapping: Mapping[str, Any] = field(default_factory=dict)
    shipped_code: str = DEFAULT_SHIPPED_CODE
    store_timezone: str = "UTC"
    account_country: str = "FR"
    stock_location_characteristic: str | None = None
    notify_customer: bool = False
    page_size: int = 50
    max_concurrency: int = 8
    requests_per_second: float = 50.0
    timeout: float = 30.0
    retry_attempts: int = 5
    retry_backoff: float = 0.5
    lookup_ttl: float = 3600.0

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.store_timezone)


class _SecretField(fields.Field[Secret]):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Secret:
        if isinstance(value, Secret):
            secret = value
        elif isinstance(value, str):
            secret = Secret(value.strip())
        else:
            raise ValidationError("must be a string")
        if not secret:
            raise ValidationError("must not be empty")
        return secret


def _web_address(value: str) -> None:
    """An absolute http(s) address with a host (marshmallow's URL validator compiles a regex that costs a
    fresh worker process about 50 ms of CPU on first use; this is the part of it the setting needs)."""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if (
        parts is None
        or parts.scheme.lower() not in ("http", "https")
        or not parts.hostname
        or any(ch.isspace() for ch in value)
        or (port is not None and not 0 < port < 65536)
    ):
        raise ValidationError("Not a valid URL (an http:// or https:// address with a host).")


class SettingsSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    token = _SecretField(required=True, error_messages={"required": "is required (set OXATIS_TOKEN)"})
    app_id = _SecretField(load_default=None, allow_none=True)
    base_url = fields.String(load_default=DEFAULT_BASE_URL, validate=_web_address)
    status_mapping = fields.Dict(keys=fields.String(), load_default=dict, allow_none=True)
    shipped_code = fields.String(load_default=DEFAULT_SHIPPED_CODE, validate=validate.Length(1, 16))
    store_timezone = fields.String(load_default="UTC")
    account_country = fields.String(load_default="FR", validate=validate.Length(2, 2))
    stock_location_characteristic = fields.String(load_default=None, allow_none=True)
    notify_customer = fields.Boolean(load_default=False)
    page_size = fields.Integer(load_default=50, validate=validate.Range(1, 500))
    max_concurrency = fields.Integer(load_default=8, validate=validate.Range(1, 64))
    requests_per_second = fields.Float(load_default=50.0, validate=validate.Range(min=0.1))
    timeout = fields.Float(load_default=30.0, validate=validate.Range(min=0.1))
    retry_attempts = fields.Integer(load_default=5, validate=validate.Range(1, 20))
    retry_backoff = fields.Float(load_default=0.5, validate=validate.Range(min=0.0, max=60.0))
    lookup_ttl = fields.Float(load_default=3600.0, validate=validate.Range(min=0.0, max=86400.0))

    @validates("store_timezone")
    def _known_zone(self, value: str, **kwargs: Any) -> None:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValidationError(f"unknown time zone {value!r} (use an IANA name such as Europe/Paris)") from None


_SCHEMA = SettingsSchema()  # built once: a schema holds no state between loads


def parse_settings(raw: Mapping[str, Any]) -> OxatisSettings:
    """Validate raw settings; the error names each bad setting and never echoes a secret."""
    try:
        data = _SCHEMA.load(dict(raw))
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"settings": exc.messages}
        detail = "; ".join(f"{k}: {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in messages.items())
        raise ConfigurationError(f"invalid Oxatis settings: {detail}") from None
    data["base_url"] = data["base_url"].rstrip("/")
    data["account_country"] = data["account_country"].upper()
    data["status_mapping"] = data["status_mapping"] or {}
    return OxatisSettings(**data)
