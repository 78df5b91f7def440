"""Fixtures for the Shopify tests: sandboxes started per test, and the settings that reach them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from channel_core import Channel, Channels
from channel_shopify.sandbox import ShopifySandboxConfig, ShopifySandboxServer

DOMAIN = "sandbox-shop.myshopify.com"
MakeSandbox = Callable[..., ShopifySandboxServer]


def shop_settings(server: ShopifySandboxServer, domain: str = DOMAIN, **extra: Any) -> dict[str, Any]:
    """Client-credentials settings for ``domain``, with retries that do not wait."""
    tenant = server.tenant(domain)
    return {
        "shop": domain,
        "base_url": server.base_url(domain),
        "client_id": tenant.client_id,
        "client_secret": tenant.client_secret,
        **extra,
    }


@pytest.fixture
def make_sandbox() -> Iterator[MakeSandbox]:
    """``make_sandbox(orders=20, bucket_size=100, ...)``: a started sandbox hosting ``DOMAIN``."""
    started: list[ShopifySandboxServer] = []

    def make(**config: Any) -> ShopifySandboxServer:
        server = ShopifySandboxServer(dataclasses.replace(ShopifySandboxConfig(orders=20), **config)).start()
        server.add_shop(DOMAIN)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def shopify() -> Channel:
    return Channels.discover()["shopify"]
