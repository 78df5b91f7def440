"""What every ``channel`` command shares: consoles, exit codes, errors, settings and the database."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.markup import escape

from channel_core.cli.settings import check_channel_tables, effective_settings, load_config, resolve_settings
from channel_core.errors import (
    AuthenticationError,
    ChannelError,
    ConfigurationError,
    InvalidShipmentError,
    PluginError,
    TransportError,
)
from channel_core.hooktypes import Connection
from channel_core.registry import Channel, Channels
from channel_core.sync import SQLiteStore

if TYPE_CHECKING:
    from channel_core.sync.postgres import PostgresStore

EXIT_OK, EXIT_PARTIAL, EXIT_CONFIG, EXIT_STOPPED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
DEFAULT_DB = "channel.sqlite3"

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class Fail(click.ClickException):
    """A clean, one-line error with the exit code that classifies it."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.exit_code = code  # type: ignore[misc]  # click declares it on the class

    def show(self, file: Any = None) -> None:
        err.print(f"[bold red]Error:[/] {escape(self.message)}")


@contextmanager
def errors() -> Iterator[None]:
    try:
        yield
    except (ConfigurationError, PluginError, InvalidShipmentError) as exc:
        raise Fail(str(exc), EXIT_CONFIG) from None
    except AuthenticationError as exc:
        raise Fail(str(exc), EXIT_CONFIG) from None
    except ChannelError as exc:
        raise Fail(str(exc), EXIT_STOPPED) from None


class Context:
    def __init__(self, config_path: str | None, db: str | None) -> None:
        self.config_path = config_path
        self.db_path = db
        self._channels: Channels | None = None

    @property
    def channels(self) -> Channels:
        if self._channels is None:
            self._channels = Channels.discover()
        return self._channels

    def channel(self, name: str) -> Channel:
        with errors():
            return self.channels[name]

    def settings(self, channel: Channel, overrides: tuple[str, ...]) -> dict[str, Any]:
        """The channel's settings from the config file, the environment and ``--set`` (secrets wrapped)."""
        with errors():
            return resolve_settings(channel.info(), self._channel_config(), overrides)

    def effective_settings(self, channel: Channel, overrides: tuple[str, ...]) -> list[tuple[str, Any, str]]:
        """Every setting the channel declares: its value (secrets ``***``) and where it came from."""
        with errors():
            return effective_settings(channel.info(), self._channel_config(), overrides)

    def _channel_config(self) -> dict[str, Any]:
        config = load_config(self.config_path)
        check_channel_tables(config, self.channels.names())
        return config

    def connect(self, name: str, overrides: tuple[str, ...]) -> tuple[Channel, Connection]:
        channel = self.channel(name)
        settings = self.settings(channel, overrides)
        with errors():
            try:
                return channel, channel.connect(settings)
            except TransportError as exc:
                if exc.request_sent:
                    raise
                # the first contact of a run: a wrong address or no network, not a pause to resume from
                raise Fail(f"{exc}; check base_url and the network", EXIT_CONFIG) from None

    def database(self) -> str:
        """Where the database is: ``--db``, else ``database`` in the config file, else ``./channel.sqlite3``."""
        with errors():
            config = load_config(self.config_path)
        return str(self.db_path or config.get("database") or DEFAULT_DB)

    def postgres(self, command: str) -> str:
        """The PostgreSQL DSN for a command that needs one (the many-stores commands)."""
        target = self.database()
        if not target.startswith(("postgresql://", "postgres://")):
            raise Fail(
                f"`channel {command}` needs PostgreSQL: pass --db postgresql://..., set CHANNEL_DB=postgresql://..., "
                'or set database = "postgresql://..." in channel.toml',
                EXIT_CONFIG,
            )
        return target

    def store(self, *, must_exist: bool = False) -> SQLiteStore | PostgresStore:
        """The database: ``--db``, else ``database`` in the config file, else ``./channel.sqlite3``.

        :param must_exist: for commands that only read it: a missing file is an error, not a new empty database.
        """
        target = self.database()
        if target.startswith(("postgresql://", "postgres://")):
            from channel_core.sync.postgres import PostgresStore

            with errors():
                return PostgresStore(target)  # the same OrderStore, for many stores and workers
        path = Path(target)
        if not path.parent.is_dir():
            raise Fail(
                f"the folder of the database {path} does not exist; create it or choose another --db", EXIT_CONFIG
            )
        if must_exist and not path.exists():
            raise Fail(
                f"no database at {path}: run `channel import CHANNEL` first, or point --db at an existing one",
                EXIT_CONFIG,
            )
        try:
            return SQLiteStore(path)
        except sqlite3.Error as exc:
            raise Fail(database_message(path, exc), EXIT_CONFIG) from None
        except ConfigurationError as exc:
            raise Fail(str(exc), EXIT_CONFIG) from None


def parse_interval(value: str, option: str) -> float:
    """``30s``, ``5m``, ``1h`` or ``30d``, at least one second; ``option`` names it in the error.

    A bare number is refused: ``--every 5`` could mean seconds or minutes, and guessing wrong is costly.
    """
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = value.strip().lower()
    try:
        seconds = float(text[:-1]) * units[text[-1]]
    except (ValueError, IndexError, KeyError):
        raise Fail(
            f"{option} must be a number with a unit (s, m, h, d), such as 30s, 5m or 1h; got {value!r}", EXIT_CONFIG
        ) from None
    if not seconds >= 1:  # also refuses NaN
        raise Fail(f"{option} must be at least 1s, got {value!r}", EXIT_CONFIG)
    return seconds


def database_message(path: Path | str, exc: BaseException) -> str:
    text = str(exc)
    if "readonly" in text or "read-only" in text:
        hint = "the file is read-only: make it writable or choose another --db"
    elif "not a database" in text or "malformed" in text:
        hint = "the file is not a channel database (or is damaged): choose another --db"
    else:
        hint = "check the path and its permissions"
    return f"database {path}: {text}; {hint}"


pass_context = click.make_pass_decorator(Context)
set_option = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a setting.")
