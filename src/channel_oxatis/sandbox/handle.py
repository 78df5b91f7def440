"""The Oxatis sandbox as the core runs it: what the ``channel_sandbox`` hook's ``make`` builds."""

from __future__ import annotations

from typing import Any

from channel_core.errors import ConfigurationError
from channel_core.hooktypes import SandboxOptions
from channel_oxatis.sandbox.faults import Fault
from channel_oxatis.sandbox.server import SandboxConfig, SandboxServer
from channel_oxatis.sandbox.variants import VARIANTS

__all__ = ["OPTIONS", "OxatisSandbox", "make_sandbox"]

OPTIONS = {
    "token": "the token the store accepts (default sandbox-token)",
    "app_id": "require this AppId",
    "timezone": "the store's zone for its naive times (default UTC)",
    "shipped_state": "false: a store without SST-SHIPPED",
    "quota_after": "reply 504 (daily quota) after N calls",
    "list_order": "modified (default) or created",
    "log_container": "wsdl (default) or xsd",
    "variants": f"comma-separated reply variants: {', '.join(sorted(VARIANTS))}",
}


class OxatisSandbox:
    """A :class:`~channel_core.hooktypes.RunningSandbox` over :class:`SandboxServer`."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.url = server.url
        self.extra_tokens: list[str] = []

    def connect_settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "token": self.server.config.token,
            "base_url": self.url,
            "store_timezone": self.server.config.timezone,
        }
        if self.server.config.app_id:
            settings["app_id"] = self.server.config.app_id
        return settings

    def store_settings(self) -> list[dict[str, Any]]:
        """Each hosted store's settings: the first store's token, then ``TOKEN-2`` ... ``TOKEN-N``."""
        first = self.connect_settings()
        return [first, *({**first, "token": token} for token in self.extra_tokens)]

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


def make_sandbox(options: SandboxOptions) -> OxatisSandbox:
    extra = dict(options.options)
    unknown = sorted(set(extra) - set(OPTIONS))
    if unknown:
        known = "; ".join(f"{k}: {v}" for k, v in OPTIONS.items())
        raise ConfigurationError(f"unknown Oxatis sandbox option {', '.join(unknown)} (known: {known})")
    try:
        faults = []
        for spec in options.faults:
            kind, _, times = spec.partition(":")
            faults.append(Fault(kind, times=int(times or 1)))
        if "quota_after" in extra:
            faults.append(Fault("quota", times=-1, after=int(extra["quota_after"])))
        variants = frozenset(v.strip() for v in extra.get("variants", "").split(",") if v.strip())
        config = SandboxConfig(
            count=options.orders,
            seed=options.seed,
            token=extra.get("token", "sandbox-token"),
            app_id=extra.get("app_id"),
            latency=options.latency,
            timezone=extra.get("timezone", "UTC"),
            with_shipped_state=extra.get("shipped_state", "true").lower() not in ("false", "0", "no"),
            faults=faults,
            list_order=extra.get("list_order", "modified"),
            log_container=extra.get("log_container", "wsdl"),
            variants=variants,
        )
        running = OxatisSandbox(SandboxServer(config, port=options.port))
        for n in range(2, options.stores + 1):
            token = f"{config.token}-{n}"
            running.server.add_store(token, count=options.orders, seed=options.seed + n)
            running.extra_tokens.append(token)
        return running
    except ValueError as exc:
        raise ConfigurationError(f"Oxatis sandbox: {exc}") from None
