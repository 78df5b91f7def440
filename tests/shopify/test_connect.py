"""Connecting: the three ways to hold a token, scopes, the shop's identity, and a shop that is unavailable."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import pytest

from channel_core import Channel, Secret
from channel_core.credentials import keep_credentials
from channel_core.errors import AuthenticationError, ConfigurationError, StoreUnavailableError
from channel_shopify import documents as docs
from channel_shopify.connection import ShopifyConnection
from channel_shopify.sandbox.handle import STATIC_TOKEN
from tests.shopify.conftest import DOMAIN, MakeSandbox, shop_settings


def test_client_credentials_mint_a_token_and_name_the_shop_by_its_domain(
    make_sandbox: MakeSandbox, shopify: Channel
) -> None:
    server = make_sandbox()
    with shopify.connect(shop_settings(server)) as connection:
        assert isinstance(connection, ShopifyConnection)
        assert connection.account_id == DOMAIN
        assert "read_orders" in connection.scopes
        assert connection.client.tokens.minted == 1
        assert connection.settings.api_version == "2026-04"


def test_a_static_token_works_and_a_wrong_one_is_refused(make_sandbox: MakeSandbox, shopify: Channel) -> None:
    server = make_sandbox()
    server.tenant(DOMAIN).tokens[STATIC_TOKEN] = float("inf")
    settings = {"shop": DOMAIN, "base_url": server.base_url(DOMAIN), "access_token": STATIC_TOKEN}
    with shopify.connect(settings) as connection:
        assert connection.account_id == DOMAIN
    with pytest.raises(AuthenticationError, match="credentials rejected") as caught:
        shopify.connect({**settings, "access_token": "shpat_wrong"})
    assert "shpat_wrong" not in str(caught.value) and "shpat_wrong" not in repr(caught.value)


def test_a_wrong_client_secret_is_a_credential_error_naming_what_to_check(
    make_sandbox: MakeSandbox, shopify: Channel
) -> None:
    server = make_sandbox()
    with pytest.raises(AuthenticationError, match="client_id, client_secret") as caught:
        shopify.connect(shop_settings(server, client_secret="not-the-secret"))
    assert "not-the-secret" not in str(caught.value)


def test_a_missing_scope_is_refused_by_name(make_sandbox: MakeSandbox, shopify: Channel) -> None:
    server = make_sandbox(scopes=("read_orders",))
    with pytest.raises(AuthenticationError, match="write_merchant_managed_fulfillment_orders") as caught:
        shopify.connect(shop_settings(server))
    assert "granted: read_orders" in str(caught.value)


def test_credentials_of_another_shop_are_refused(make_sandbox: MakeSandbox, shopify: Channel) -> None:
    server = make_sandbox()
    server.add_shop("other-shop.myshopify.com")
    settings = shop_settings(server, "other-shop.myshopify.com")
    with pytest.raises(ConfigurationError, match=r"open other-shop\.myshopify\.com, not the shop configured"):
        shopify.connect({**settings, "shop": DOMAIN})


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"shop": "Not A Shop"}, "name.myshopify.com"),
        ({"shop": DOMAIN, "api_version": "2026-05"}, "quarterly version"),
        ({"shop": DOMAIN}, "needs credentials"),
        ({"shop": DOMAIN, "client_id": "x"}, "go together"),
        ({"shop": DOMAIN, "access_token": "t", "depth_cap": "deep"}, "depth_cap must be a number"),
        ({"shop": DOMAIN, "access_token": "t", "colour": "red"}, "unknown shopify setting"),
    ],
)
def test_bad_settings_are_named(shopify: Channel, settings: Mapping[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        shopify.connect(settings)


@pytest.mark.parametrize("fault, status", [("locked", 423), ("frozen", 402)])
def test_a_locked_or_frozen_shop_is_unavailable_not_a_credential_problem(
    make_sandbox: MakeSandbox, shopify: Channel, fault: str, status: int
) -> None:
    server = make_sandbox()
    server.add_fault(fault)
    with pytest.raises(StoreUnavailableError) as caught:
        shopify.connect(shop_settings(server))
    assert caught.value.status_code == status and not isinstance(caught.value, AuthenticationError)


def test_an_expired_token_is_minted_again_once(make_sandbox: MakeSandbox, shopify: Channel) -> None:
    server = make_sandbox()
    with shopify.connect(shop_settings(server)) as connection:
        assert isinstance(connection, ShopifyConnection)
        server.expire_tokens(DOMAIN)
        reply = connection.client.execute("ChannelShop", docs.SHOP, {}, cost=docs.SHOP_COST)
        assert reply.data["shop"]["myshopifyDomain"] == DOMAIN
        assert connection.client.tokens.minted == 2


def test_a_token_is_renewed_before_it_expires(make_sandbox: MakeSandbox, shopify: Channel) -> None:
    server = make_sandbox(token_lifetime=30.0)  # renewed a minute early, so at once
    with shopify.connect(shop_settings(server)) as connection:
        assert isinstance(connection, ShopifyConnection)
        connection.client.execute("ChannelShop", docs.SHOP, {}, cost=docs.SHOP_COST)
        assert connection.client.tokens.minted == 2


class Keeper:
    """A host's credential store: records what it was given, and when."""

    def __init__(self, fail: bool = False) -> None:
        self.saved: list[str] = []
        self.fail = fail
        self.lock = threading.Lock()

    def save(self, renewed: Mapping[str, Secret]) -> None:
        if self.fail:
            raise OSError("the vault is read-only")
        with self.lock:
            self.saved.append(renewed["refresh_token"].reveal())


def test_a_rotated_refresh_token_is_kept_before_the_new_access_token_is_used(
    make_sandbox: MakeSandbox, shopify: Channel
) -> None:
    server = make_sandbox()
    tenant = server.tenant(DOMAIN)
    first = tenant.refresh_current
    keeper = Keeper()
    with keep_credentials(keeper), shopify.connect(shop_settings(server, refresh_token=first)) as connection:
        assert isinstance(connection, ShopifyConnection)
        assert keeper.saved == [tenant.refresh_current] and keeper.saved[0] != first
        server.expire_tokens(DOMAIN)
        connection.client.execute("ChannelShop", docs.SHOP, {}, cost=docs.SHOP_COST)  # a 401, then a refresh
    assert len(keeper.saved) == 2 and keeper.saved[1] == tenant.refresh_current
    # the first token's successor has been used: the first one is dead now
    with pytest.raises(AuthenticationError):
        shopify.connect(shop_settings(server, refresh_token=first))
    with keep_credentials(Keeper()), shopify.connect(shop_settings(server, refresh_token=keeper.saved[-1])):
        pass


def test_a_refresh_token_whose_successor_was_never_used_still_works(
    make_sandbox: MakeSandbox, shopify: Channel
) -> None:
    server = make_sandbox()
    first = server.tenant(DOMAIN).refresh_current
    with keep_credentials(Keeper()), shopify.connect(shop_settings(server, refresh_token=first)):
        pass
    with keep_credentials(Keeper()), shopify.connect(shop_settings(server, refresh_token=first)):
        pass  # the grace of shopify-api.md §2


def test_without_the_grace_switch_a_refresh_token_works_once(make_sandbox: MakeSandbox, shopify: Channel) -> None:
    server = make_sandbox(refresh_grace=False)
    first = server.tenant(DOMAIN).refresh_current
    with keep_credentials(Keeper()), shopify.connect(shop_settings(server, refresh_token=first)):
        pass
    with pytest.raises(AuthenticationError):
        shopify.connect(shop_settings(server, refresh_token=first))


def test_a_keeper_that_cannot_write_stops_the_connection_before_the_new_token_is_used(
    make_sandbox: MakeSandbox, shopify: Channel
) -> None:
    server = make_sandbox()
    first = server.tenant(DOMAIN).refresh_current
    with (
        pytest.raises(ConfigurationError, match="could not keep the renewed refresh token"),
        keep_credentials(Keeper(fail=True)),
    ):
        shopify.connect(shop_settings(server, refresh_token=first))
    assert server.tenant(DOMAIN).documents == []  # no query went out with the new access token
    with keep_credentials(Keeper()), shopify.connect(shop_settings(server, refresh_token=first)):
        pass  # the old refresh token still works: its successor was never used


def test_a_static_tokens_shop_and_scopes_are_kept_so_the_next_connect_makes_no_call(
    make_sandbox: MakeSandbox, shopify: Channel
) -> None:
    """What connect asks (the shop, the app's scopes) is kept for lookup_ttl per shop and token: a worker's next
    sync of the shop makes its listing call only. The token revoked since is found by the first real call."""
    server = make_sandbox()
    tenant = server.tenant(DOMAIN)
    tenant.tokens[STATIC_TOKEN] = float("inf")
    settings = {"shop": DOMAIN, "base_url": server.base_url(DOMAIN), "access_token": STATIC_TOKEN}
    shopify.connect(settings).close()
    del tenant.tokens[STATIC_TOKEN]  # revoked: a connect that asked would be refused
    with shopify.connect(settings) as connection:  # asked nothing
        assert isinstance(connection, ShopifyConnection) and connection.account_id == DOMAIN
        with pytest.raises(AuthenticationError):
            connection.client.execute("ChannelShop", docs.SHOP, {}, cost=docs.SHOP_COST)
    with pytest.raises(AuthenticationError, match="credentials rejected"):
        shopify.connect({**settings, "lookup_ttl": 0})  # 0: asked every time; refused, the kept answer goes
    with pytest.raises(AuthenticationError, match="credentials rejected"):
        shopify.connect(settings)
