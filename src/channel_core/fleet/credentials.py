"""Credentials stay with the host: the registry keeps a reference, a resolver turns it into secrets at run time.

A resolver is any callable ``(store, info) -> {setting: value}`` returning the store's secret
settings (a vault lookup, a KMS decrypt, a call to the host's own API). It runs inside the sync,
so nothing secret is written to PostgreSQL, to a job's arguments or to a log.
:func:`environment_credentials` is the default: the reference ``env:ACME`` reads ``ACME_TOKEN``
(``PREFIX_`` + the setting's name, upper case) for each secret setting of the channel.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from channel_core.errors import ConfigurationError
from channel_core.fleet.registry import RegisteredStore
from channel_core.hooktypes import ChannelInfo
from channel_core.secret import Secret

__all__ = ["CredentialResolver", "environment_credentials", "store_settings"]

CredentialResolver = Callable[[RegisteredStore, ChannelInfo], Mapping[str, Any]]


def environment_credentials(
    store: RegisteredStore, info: ChannelInfo, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Resolve ``env:PREFIX``: each secret setting ``name`` comes from ``PREFIX_NAME``."""
    env = os.environ if env is None else env
    scheme, _, prefix = store.credentials.partition(":")
    if scheme != "env" or not prefix:
        raise ConfigurationError(
            f"store {store.key}: credentials reference {store.credentials!r} is not env:PREFIX, "
            "the only kind the default resolver reads (a host passes its own resolver for others)"
        )
    secrets: dict[str, Any] = {}
    missing = []
    for spec in info.settings:
        if not spec.secret:
            continue
        variable = f"{prefix}_{spec.name.upper()}"
        if env.get(variable):
            secrets[spec.name] = Secret(env[variable])
        elif spec.required:
            missing.append(variable)
    if missing:
        raise ConfigurationError(f"store {store.key}: set {', '.join(missing)} in the worker's environment")
    return secrets


def store_settings(store: RegisteredStore, info: ChannelInfo, resolve: CredentialResolver) -> dict[str, Any]:
    """The settings ``connect`` gets for a registered store: its own, plus the resolved secrets (wrapped)."""
    settings: dict[str, Any] = {**store.settings, **resolve(store, info)}
    known = {spec.name: spec for spec in info.settings}
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise ConfigurationError(f"store {store.key}: unknown {info.name} setting(s): {', '.join(unknown)}")
    for name, value in settings.items():
        if known[name].secret and isinstance(value, str):
            settings[name] = Secret(value)
    missing = sorted(spec.name for spec in info.settings if spec.required and not settings.get(spec.name))
    if missing:
        raise ConfigurationError(f"store {store.key}: missing {info.name} setting(s): {', '.join(missing)}")
    return settings
