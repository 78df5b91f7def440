"""The Shopify sandbox as the core runs it: what the ``channel_sandbox`` hook's ``make`` builds."""

from __future__ import annotations

import dataclasses
from typing import Any

from channel_core.errors import ConfigurationError
from channel_core.hooktypes import SandboxOptions
from channel_shopify.sandbox.server import FAULT_KINDS, Fault, ShopifySandboxConfig, ShopifySandboxServer

__all__ = ["OPTIONS", "ShopifySandbox", "make_sandbox"]

OPTIONS = {
    "auth": "client_credentials (default), refresh (a rotating refresh token) or token (a static access token)",
    "bucket_size": "points the bucket holds (default 2000)",
    "restore_rate": "points restored per second (default 100)",
    "throttle_status": "HTTP status of THROTTLED replies: 200 (default) or 429",
    "search_lag": "seconds the updated_at search index runs behind edits (default 0)",
    "search_precision": "second (default) or exact: how updated_at bounds compare",
    "write_touch_delay": "seconds before a fulfillment or tracking update moves Order.updatedAt (default 0: at once)",
    "listing": "all (default) or open: whether orders lists cancelled and closed orders",
    "token_lifetime": "seconds a client-credentials token lives (default 86400)",
    "refresh_grace": "true (default) or false: the previous refresh token works until the new one is used",
    "depth_cap": "how deep a connection may be paged (default 25000)",
    "clock_skew": "seconds the shop's clock runs ahead of the host's",
}
_FLOATS = {"bucket_size", "restore_rate", "search_lag", "token_lifetime", "clock_skew", "write_touch_delay"}
_INTS = {"throttle_status", "depth_cap"}
_BOOLS = {"refresh_grace"}
STATIC_TOKEN = "shpat_sandbox_static_token"  # noqa: S105 - the sandbox's own, published test token


class ShopifySandbox:
    """A :class:`~channel_core.hooktypes.RunningSandbox` over :class:`ShopifySandboxServer`."""

    def __init__(self, server: ShopifySandboxServer, auth: str = "client_credentials") -> None:
        self.server, self.auth = server, auth
        self.url = server.url
        self.domains: list[str] = []

    def _settings(self, domain: str) -> dict[str, Any]:
        tenant = self.server.tenant(domain)
        settings: dict[str, Any] = {"shop": domain, "base_url": self.server.base_url(domain)}
        if self.auth == "token":
            settings["access_token"] = STATIC_TOKEN
        else:
            settings["client_id"], settings["client_secret"] = tenant.client_id, tenant.client_secret
            if self.auth == "refresh":
                settings["refresh_token"] = tenant.refresh_current
        return settings

    def connect_settings(self) -> dict[str, Any]:
        return self._settings(self.domains[0])

    def store_settings(self) -> list[dict[str, Any]]:
        return [self._settings(domain) for domain in self.domains]

    def start(self) -> None:
        self.server.start()

    def serve_forever(self) -> None:
        try:
            self.server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self.server.close()

    def stop(self) -> None:
        self.server.stop()


def make_sandbox(options: SandboxOptions) -> ShopifySandbox:
    extra = dict(options.options)
    unknown = sorted(set(extra) - set(OPTIONS))
    if unknown:
        known = "; ".join(f"{k}: {v}" for k, v in OPTIONS.items())
        raise ConfigurationError(f"unknown Shopify sandbox option {', '.join(unknown)} (known: {known})")
    auth = extra.pop("auth", "client_credentials")
    if auth not in ("client_credentials", "refresh", "token"):
        raise ConfigurationError(f"Shopify sandbox: auth must be client_credentials, refresh or token, not {auth!r}")
    try:
        values: dict[str, Any] = {}
        for name, raw in extra.items():
            if name in _FLOATS:
                values[name] = float(raw)
            elif name in _INTS:
                values[name] = int(raw)
            elif name in _BOOLS:
                values[name] = raw.lower() not in ("false", "0", "no")
            else:
                values[name] = raw
        faults = []
        for spec in options.faults:
            kind, _, times = spec.partition(":")
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault {kind!r} (known: {', '.join(sorted(FAULT_KINDS))})")
            faults.append(Fault(kind, times=int(times or 1)))
        config = dataclasses.replace(
            ShopifySandboxConfig(),
            orders=options.orders,
            seed=options.seed,
            latency=options.latency,
            faults=faults,
            **values,
        )
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"Shopify sandbox: {exc}") from None
    running = ShopifySandbox(ShopifySandboxServer(config, port=options.port), auth)
    for number in range(1, options.stores + 1):
        domain = "sandbox-shop.myshopify.com" if number == 1 else f"sandbox-shop-{number}.myshopify.com"
        running.server.add_shop(domain, static_token=STATIC_TOKEN if number == 1 else f"{STATIC_TOKEN}_{number}")
        running.domains.append(domain)
    return running
