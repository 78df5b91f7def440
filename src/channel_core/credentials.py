"""Credentials that change during a connection: how a channel hands renewed secrets to its host.

Some stores rotate credentials: a refresh token is replaced each time it is used, and the old one stops
working once the new one has been used. A channel that renews such a secret calls :func:`hand_over`
*before* it uses the new one; the host's :class:`CredentialKeeper` (set with :func:`keep_credentials`
around ``connect``) persists it. When the keeper fails, the channel must not use the new secret: the
old one still works until then, so nothing is lost.

A host without a keeper (a one-off ``channel import`` from a config file) gets a warning naming the
settings it should update; the channel goes on with the renewed secret for this connection.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping
from typing import Protocol

from channel_core.logs import get_logger
from channel_core.secret import Secret

__all__ = ["CredentialKeeper", "current_keeper", "hand_over", "keep_credentials"]

logger = get_logger(__name__)


class CredentialKeeper(Protocol):
    """Where a host keeps a store's secrets, and can write them."""

    def save(self, renewed: Mapping[str, Secret]) -> None:
        """Persist ``renewed`` (setting name to new value) durably before returning; raise if that failed."""
        ...


_KEEPER: contextvars.ContextVar[CredentialKeeper | None] = contextvars.ContextVar(
    "channel_core_credential_keeper", default=None
)


@contextlib.contextmanager
def keep_credentials(keeper: CredentialKeeper | None) -> Iterator[None]:
    """The keeper of the connections made in this block (channels read it at ``connect``)."""
    token = _KEEPER.set(keeper)
    try:
        yield
    finally:
        _KEEPER.reset(token)


def current_keeper() -> CredentialKeeper | None:
    """The keeper a channel should hand renewed secrets to; read it once, at ``connect``."""
    return _KEEPER.get()


def hand_over(channel: str, keeper: CredentialKeeper | None, renewed: Mapping[str, Secret]) -> None:
    """Give renewed secrets to the host before using them.

    :raises Exception: whatever the keeper raised; the caller must then keep using the old secret.
    """
    if keeper is None:
        logger.warning(
            "credentials_renewed_not_kept",
            channel=channel,
            settings=sorted(renewed),
            hint="the host keeps no credentials: update these settings yourself, the old values stop working "
            "once the new ones have been used",
        )
        return
    keeper.save(renewed)
    logger.info("credentials_renewed", channel=channel, settings=sorted(renewed))
