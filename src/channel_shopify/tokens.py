"""Access tokens: a static one, one minted by the client credentials grant, or one minted from a refresh
token that rotates on every use.

Minted tokens are renewed before they expire (a tenth of their lifetime early, at least a minute) and
once after a 401. A rotated refresh token goes to the host's keeper (:mod:`channel_core.credentials`)
before the new access token is used; if the keeper fails, nothing minted is used.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from channel_core.credentials import CredentialKeeper, hand_over
from channel_core.errors import AuthenticationError, ChannelAPIError, ClientError, ConfigurationError, ServerError
from channel_core.http import HttpClient
from channel_core.secret import Secret
from channel_shopify.settings import ShopifySettings

__all__ = ["Tokens"]

TOKEN_PATH = "admin/oauth/access_token"  # noqa: S105 - a path, not a secret


class Tokens:
    """The current access token of one connection, renewed as needed; thread-safe."""

    def __init__(
        self,
        settings: ShopifySettings,
        http: HttpClient,
        keeper: CredentialKeeper | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings, self.http, self.keeper, self.clock = settings, http, keeper, clock
        self._lock = threading.Lock()
        self._token: Secret | None = settings.access_token if settings.grant == "static" else None
        self._renew_at = float("inf")
        self._refresh = settings.refresh_token
        self.granted_scopes: tuple[str, ...] | None = None
        self.minted = 0

    @property
    def renewable(self) -> bool:
        return self.settings.grant != "static"

    def header(self) -> dict[str, str]:
        """The header of the next call; mints a token first when none is valid."""
        with self._lock:
            if self._token is None or self.clock() >= self._renew_at:
                self._mint()
            assert self._token is not None
            return {"X-Shopify-Access-Token": self._token.reveal()}

    def rejected(self, header: dict[str, str]) -> bool:
        """A call with ``header`` got a 401: mint a new token unless another thread already did.
        Returns whether a retry may help (``False`` for a static token)."""
        if not self.renewable:
            return False
        with self._lock:
            if self._token is not None and self._token.reveal() == header.get("X-Shopify-Access-Token"):
                self._mint()
            return True

    def _mint(self) -> None:
        settings = self.settings
        assert settings.client_id is not None and settings.client_secret is not None
        form = {"client_id": settings.client_id, "client_secret": settings.client_secret.reveal()}
        if settings.grant == "refresh_token":
            assert self._refresh is not None
            form.update(grant_type="refresh_token", refresh_token=self._refresh.reveal())
        else:
            form["grant_type"] = "client_credentials"
        reply = self.http.post_form(
            TOKEN_PATH,
            form,
            operation="access token",
            # a refresh token is spent by its first use: never resend one whose reply may have been lost
            idempotent=settings.grant == "client_credentials",
            parse=_token_reply,
        )
        token = reply.get("access_token")
        if not isinstance(token, str) or not token:
            raise ServerError(
                "the token endpoint answered without an access_token", channel="shopify", operation="access token"
            )
        rotated = reply.get("refresh_token")
        if settings.grant == "refresh_token" and isinstance(rotated, str) and rotated:
            new_refresh = Secret(rotated)
            try:
                hand_over("shopify", self.keeper, {"refresh_token": new_refresh})  # kept before anything is used
            except Exception as exc:
                raise ConfigurationError(
                    f"the host could not keep the renewed refresh token ({type(exc).__name__}: {exc}); nothing new "
                    "was used, and the current refresh token keeps working until its successor is used"
                ) from exc
            self._refresh = new_refresh
        lifetime = float(reply.get("expires_in") or 0)
        self._renew_at = self.clock() + max(0.0, lifetime - max(60.0, lifetime / 10)) if lifetime else float("inf")
        scope = reply.get("scope")
        if isinstance(scope, str):
            self.granted_scopes = tuple(s.strip() for s in scope.split(",") if s.strip())
        self._token = Secret(token)
        self.minted += 1

    def __repr__(self) -> str:
        return f"Tokens(shop={self.settings.shop!r}, grant={self.settings.grant!r})"


def _token_reply(response: httpx.Response) -> dict[str, Any]:
    try:
        body = json.loads(response.content)
    except ValueError:
        raise ServerError(
            "the token endpoint's reply is not JSON", channel="shopify", operation="access token"
        ) from None
    if not isinstance(body, dict):
        raise ServerError("the token endpoint's reply is not an object", channel="shopify", operation="access token")
    return body


def token_error(exc: ChannelAPIError) -> ChannelAPIError:
    """A refused grant (HTTP 400 ``invalid_client``/``invalid_grant``) is a credential problem."""
    if isinstance(exc, ClientError) and exc.status_code == 400:
        return AuthenticationError(
            "Shopify refused the app's credentials (client_id, client_secret or refresh_token): check them in the "
            "app's settings in the Shopify admin or Dev Dashboard",
            channel="shopify",
            operation="access token",
            status_code=400,
        )
    return exc
