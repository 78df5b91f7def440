"""The ``channel`` command: run the whole job without a host application of your own.

Exit codes: 0 success; 1 partial failure (some orders or notifications failed);
2 configuration or authentication error (the message says what to fix);
3 stopped early (daily quota, API unavailable); 130 interrupted.
"""

from __future__ import annotations

import logging
import sqlite3
import sys

import click
import structlog

from channel_core.cli.context import (
    DEFAULT_DB,
    EXIT_CONFIG,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_STOPPED,
    Context,
    Fail,
    database_message,
)
from channel_core.cli.exporting import orders
from channel_core.cli.failures import failures
from channel_core.cli.importing import import_orders, sync
from channel_core.cli.notifications import notifications
from channel_core.cli.sandbox import demo, sandbox
from channel_core.cli.shipping import ship
from channel_core.cli.stores import connect, list_channels
from channel_core.logs import redact_processor

__all__ = ["EXIT_CONFIG", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_PARTIAL", "EXIT_STOPPED", "cli", "main"]


def _configure_logging(verbose: int) -> None:
    """The CLI is an application, so it (not the library) decides where logs go."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            redact_processor,
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )


class ChannelGroup(click.Group):
    """Turns the failures an operator can cause into one line and the README's exit code."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise Fail("interrupted; the next run resumes from the last stored page", EXIT_INTERRUPTED) from None
        except sqlite3.Error as exc:
            obj = ctx.find_object(Context)
            where = (obj.db_path if obj is not None else None) or "the database"
            raise Fail(database_message(where, exc), EXIT_CONFIG) from None


@click.group(cls=ChannelGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", default=None, help="TOML config file (default ./channel.toml).")
@click.option("--db", default=None, envvar="CHANNEL_DB", help=f"SQLite database (default ./{DEFAULT_DB}).")
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug), secrets redacted.")
@click.version_option(package_name="channel-integrations")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, db: str | None, verbose: int) -> None:
    """Import orders from online stores and send shipment notifications back."""
    _configure_logging(verbose)
    ctx.obj = Context(config_path, db)


for command in (list_channels, connect, import_orders, orders, failures, ship, notifications, sync, sandbox, demo):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="channel")
