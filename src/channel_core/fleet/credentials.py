"""Credentials stay with the host: the registry keeps a reference, a resolver turns it into secrets at run time.

A resolver is any callable ``(store, info) -> {setting: value}`` returning the store's secret
settings (a vault lookup, a KMS decrypt, a call to the host's own API). It runs inside the sync,
so nothing secret is written to PostgreSQL, to a job's arguments or to a log.
:func:`environment_credentials` is the default: the reference ``env:ACME`` reads ``ACME_TOKEN``
(``PREFIX_`` + the setting's name, upper case) for each secret setting of the channel.

Credentials that rotate (a refresh token replaced on every use) need a resolver that can also write:
one with a ``save(store, info, renewed)`` method (:class:`WritableResolver`). The engine hands it what a
channel renewed during a sync, before the channel uses it (:mod:`channel_core.credentials`).
:class:`FileCredentials` is one: ``file:NAME`` reads and rewrites ``DIRECTORY/NAME.json``. The
environment cannot be written, so a store on ``env:`` whose secret rotates gets a warning instead.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from channel_core.errors import ConfigurationError
from channel_core.fleet.registry import RegisteredStore
from channel_core.hooktypes import ChannelInfo
from channel_core.secret import Secret

__all__ = [
    "CredentialResolver",
    "DefaultCredentials",
    "FileCredentials",
    "WritableResolver",
    "environment_credentials",
    "keeper_for",
    "store_settings",
]

CredentialResolver = Callable[[RegisteredStore, ChannelInfo], Mapping[str, Any]]


@runtime_checkable
class WritableResolver(Protocol):
    """A resolver that can also persist a store's renewed secrets."""

    def __call__(self, store: RegisteredStore, info: ChannelInfo) -> Mapping[str, Any]: ...

    def save(self, store: RegisteredStore, info: ChannelInfo, renewed: Mapping[str, Secret]) -> None:
        """Write ``renewed`` durably, or raise."""
        ...


class _StoreKeeper:
    def __init__(self, resolver: WritableResolver, store: RegisteredStore, info: ChannelInfo) -> None:
        self.resolver, self.store, self.info = resolver, store, info

    def save(self, renewed: Mapping[str, Secret]) -> None:
        self.resolver.save(self.store, self.info, renewed)


def keeper_for(resolver: CredentialResolver, store: RegisteredStore, info: ChannelInfo) -> Any:
    """The :class:`~channel_core.credentials.CredentialKeeper` of one store, or ``None`` when its resolver
    cannot write (the channel then warns, and keeps using the secret it was given)."""
    if isinstance(resolver, WritableResolver) and getattr(resolver, "writes", lambda _store: True)(store):
        return _StoreKeeper(resolver, store, info)
    return None


class DefaultCredentials:
    """What ``channel worker`` resolves: ``env:PREFIX`` (:func:`environment_credentials`) and, when
    ``CHANNEL_CREDENTIALS_DIR`` names a folder, ``file:NAME`` (:class:`FileCredentials`), which also keeps
    renewed secrets."""

    schemes = ("env", "file")

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        folder = directory if directory is not None else os.environ.get("CHANNEL_CREDENTIALS_DIR")
        self.files = FileCredentials(folder) if folder else None

    def _files(self, store: RegisteredStore) -> FileCredentials:
        if self.files is None:
            raise ConfigurationError(
                f"store {store.key}: credentials {store.credentials!r} are in files, but CHANNEL_CREDENTIALS_DIR "
                "names no folder in the worker's environment"
            )
        return self.files

    def writes(self, store: RegisteredStore) -> bool:
        return store.credentials.startswith("file:")

    def __call__(self, store: RegisteredStore, info: ChannelInfo) -> Mapping[str, Any]:
        if store.credentials.startswith("file:"):
            return self._files(store)(store, info)
        return environment_credentials(store, info)

    def save(self, store: RegisteredStore, info: ChannelInfo, renewed: Mapping[str, Secret]) -> None:
        self._files(store).save(store, info, renewed)


class FileCredentials:
    """Secrets in JSON files, one per store: the reference ``file:NAME`` is ``DIRECTORY/NAME.json``
    (``{"access_token": "..."}``), and renewed secrets are written back to it atomically.

    Keep the directory readable by the workers only; files are written with mode 0600.
    """

    scheme = "file"

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def _path(self, store: RegisteredStore) -> Path:
        scheme, _, name = store.credentials.partition(":")
        if scheme != self.scheme or not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or name.startswith("."):
            raise ConfigurationError(
                f"store {store.key}: credentials reference {store.credentials!r} is not file:NAME "
                "(letters, digits, '.', '_', '-')"
            )
        return self.directory / f"{name}.json"

    def __call__(self, store: RegisteredStore, info: ChannelInfo) -> dict[str, Any]:
        path = self._path(store)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigurationError(f"store {store.key}: no credentials file {path}") from None
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"store {store.key}: cannot read {path} ({type(exc).__name__})") from None
        if not isinstance(data, dict):
            raise ConfigurationError(f"store {store.key}: {path} must hold a JSON object of settings")
        secret_names = {spec.name for spec in info.settings if spec.secret}
        return {name: Secret(str(value)) if name in secret_names else value for name, value in data.items()}

    def save(self, store: RegisteredStore, info: ChannelInfo, renewed: Mapping[str, Secret]) -> None:
        path = self._path(store)
        data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        data.update({name: value.reveal() for name, value in renewed.items()})
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=2, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, 0o600)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a crash
        finally:
            os.close(directory)

    def __repr__(self) -> str:
        return f"FileCredentials({str(self.directory)!r})"


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
