"""Where the ``channel`` command reads a channel's settings from.

Later sources win: the TOML config file (``[channels.<name>]``), then each
setting's environment variable (``OXATIS_TOKEN``...), then ``--set key=value``.
Secrets are wrapped in :class:`~channel_core.secret.Secret` as soon as they are read.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from channel_core.errors import ConfigurationError
from channel_core.hooktypes import ChannelInfo
from channel_core.secret import Secret

__all__ = [
    "DEFAULT_CONFIG",
    "check_channel_tables",
    "effective_settings",
    "load_config",
    "parse_value",
    "resolve_settings",
]

DEFAULT_CONFIG = "channel.toml"


def load_config(path: str | None) -> dict[str, Any]:
    """Read the config file; a missing default file is fine, a missing named one is not."""
    chosen = path or os.environ.get("CHANNEL_CONFIG")
    candidate = Path(chosen or DEFAULT_CONFIG)
    if not candidate.exists():
        if chosen:
            raise ConfigurationError(f"config file {candidate} does not exist")
        return {}
    try:
        with candidate.open("rb") as handle:
            config = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"config file {candidate} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigurationError(f"config file {candidate} cannot be read: {exc.strerror or exc}") from None
    check_config(config, candidate)
    return config


TOP_LEVEL_KEYS = {"database": str, "channels": dict}


def check_config(config: Mapping[str, Any], path: Path) -> None:
    """Refuse what would otherwise be silently ignored: unknown keys, wrong types."""
    for key, value in config.items():
        if key not in TOP_LEVEL_KEYS:
            raise ConfigurationError(
                f"{path}: unknown key {key!r} (known: {', '.join(sorted(TOP_LEVEL_KEYS))}; "
                "channel settings go in a [channels.NAME] table)"
            )
        if not isinstance(value, TOP_LEVEL_KEYS[key]):
            kind = "a string (a file path)" if key == "database" else "a table of [channels.NAME] tables"
            raise ConfigurationError(f"{path}: {key!r} must be {kind}, got {value!r}")
    for name, section in config.get("channels", {}).items():
        if not isinstance(section, Mapping):
            raise ConfigurationError(f"{path}: [channels.{name}] must be a table, got {section!r}")


def check_channel_tables(config: Mapping[str, Any], installed: Iterable[str]) -> None:
    """A ``[channels.NAME]`` table for a channel that is not installed is a typo until proven otherwise."""
    names = sorted(installed)
    for name in config.get("channels", {}):
        if name not in names:
            raise ConfigurationError(
                f"the config file has a [channels.{name}] table, but no channel {name!r} is installed "
                f"(installed: {', '.join(names) or 'none'})"
            )


def parse_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def resolve_settings(
    info: ChannelInfo,
    config: Mapping[str, Any],
    overrides: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    settings, _ = _resolve(info, config, overrides, env)
    return settings


def effective_settings(
    info: ChannelInfo,
    config: Mapping[str, Any],
    overrides: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
) -> list[tuple[str, Any, str]]:
    """Every setting the channel declares with the value it takes and where it came from.

    Sources: ``default``, ``file``, ``environment (NAME)``, ``--set``, or ``unset``. Secrets are ``***``.
    """
    settings, sources = _resolve(info, config, overrides, env)
    rows = []
    for spec in info.settings:
        if spec.name in settings:
            value, source = settings[spec.name], sources[spec.name]
        elif spec.default is not None:
            value, source = spec.default, "default"
        else:
            value, source = None, "unset"
        if spec.secret and value is not None:
            value = "***"
        rows.append((spec.name, value, source))
    return rows


def _resolve(
    info: ChannelInfo,
    config: Mapping[str, Any],
    overrides: Iterable[str],
    env: Mapping[str, str] | None,
) -> tuple[dict[str, Any], dict[str, str]]:
    env = os.environ if env is None else env
    section = config.get("channels", {}).get(info.name, {})
    if not isinstance(section, Mapping):
        raise ConfigurationError(f"[channels.{info.name}] in the config file must be a table")
    settings: dict[str, Any] = dict(section)
    sources = dict.fromkeys(settings, "file")
    for spec in info.settings:
        if spec.env and env.get(spec.env):
            settings[spec.name] = env[spec.env]
            sources[spec.name] = f"environment ({spec.env})"
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigurationError(f"--set expects key=value, got {item!r}")
        settings[key.strip()] = parse_value(raw.strip())
        sources[key.strip()] = "--set"
    known = {spec.name for spec in info.settings}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigurationError(
            f"unknown {info.name} setting(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    for spec in info.settings:
        if spec.secret and isinstance(settings.get(spec.name), str):
            settings[spec.name] = Secret(settings[spec.name])
    missing = [s for s in info.settings if s.required and not settings.get(s.name)]
    if missing:
        hints = "; ".join(
            f"{s.name} (set {s.env}, or {s.name} in [channels.{info.name}] of {DEFAULT_CONFIG})"
            if s.env
            else f"{s.name} (in [channels.{info.name}] of {DEFAULT_CONFIG}, or --set {s.name}=...)"
            for s in missing
        )
        raise ConfigurationError(f"missing {info.name} setting(s): {hints}")
    return settings, sources
