"""The ``channel`` command: run the whole job without a host application of your own."""

from __future__ import annotations

import importlib
from typing import Any

import click

from channel_core import __version__

__all__ = ["COMMANDS", "cli", "main"]

# Each command's module loads only when the command runs (or its own --help is asked for):
# `channel --help` and `channel --version` stay a small multiple of a bare interpreter start.
# name -> ("module:attribute", the one-line help `channel --help` shows; a test keeps them in step)
COMMANDS: dict[str, tuple[str, str]] = {
    "list": ("channel_core.cli.channels:list_channels", "Installed channels, their versions and capabilities."),
    "connect": ("channel_core.cli.channels:connect", "Check a store: prove the credentials, show its statuses."),
    "import": ("channel_core.cli.importing:import_orders", "One incremental sync of a store's orders."),
    "orders": ("channel_core.cli.exporting:orders", "List or export imported orders."),
    "failures": ("channel_core.cli.failures:failures", "Orders whose import failed, and retrying them."),
    "ship": ("channel_core.cli.shipping:ship", "Tell the store an order shipped (safe to repeat)."),
    "notifications": ("channel_core.cli.notifications:notifications", "Shipment notifications not yet accepted."),
    "sync": ("channel_core.cli.importing:sync", "Import and retry notifications repeatedly."),
    "sandbox": ("channel_core.cli.sandbox:sandbox", "Run a channel's sandbox store until Ctrl-C."),
    "demo": ("channel_core.cli.sandbox:demo", "The whole job against a sandbox, in a new database."),
    "stores": ("channel_core.cli.fleet:stores", "The stores the workers sync (PostgreSQL): add, list, remove."),
    "worker": ("channel_core.cli.fleet:worker", "Sync the registered stores until Ctrl-C (procrastinate)."),
    "status": ("channel_core.cli.fleet:status", "Fleet totals and scheduling lag, then stores worst first."),
    "webhooks": ("channel_core.cli.webhooks:webhooks", "Receive store webhooks and sync the orders they name."),
}


def _configure_logging(verbose: int) -> None:
    """The CLI is an application, so it (not the library) decides where logs go."""
    import logging
    import sys

    import structlog

    from channel_core.logs import redact_processor

    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    # The database drivers and the job queue log every failed reconnection (with tracebacks) on their own
    # loggers; the worker says in one line when the database goes and comes back. -vv shows theirs too.
    for name in ("psycopg", "procrastinate", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL if verbose < 2 else logging.DEBUG)
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
    """Loads commands on demand, and turns the failures an operator can cause into one line and an exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module, _, attribute = entry[0].partition(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][1]) for name in self.list_commands(ctx)])

    def invoke(self, ctx: click.Context) -> Any:
        import sqlite3

        from channel_core.cli.context import (
            EXIT_CONFIG,
            EXIT_INTERRUPTED,
            EXIT_STOPPED,
            Context,
            Fail,
            database_message,
        )

        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise Fail("interrupted; the next run resumes from the last stored page", EXIT_INTERRUPTED) from None
        except sqlite3.Error as exc:
            obj = ctx.find_object(Context)
            where = (obj.db_path if obj is not None else None) or "the database"
            raise Fail(database_message(where, exc), EXIT_CONFIG) from None
        except Exception as exc:
            from channel_core.fleet.supervision import is_database_error

            if not is_database_error(exc):
                raise
            if (ctx.params.get("verbose") or 0) >= 2:
                import traceback

                traceback.print_exc()
            reason = " ".join(str(exc.__cause__ or exc).split())[:200] or type(exc).__name__
            raise Fail(
                f"the database became unavailable ({reason}); the command stopped. What it recorded is kept and "
                "a shipment is never sent twice: run it again once the database is back",
                EXIT_STOPPED,
            ) from None


@click.group(cls=ChannelGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", default=None, help="TOML config file (default ./channel.toml).")
@click.option(
    "--db",
    default=None,
    envvar="CHANNEL_DB",
    help="The database: a SQLite file, or postgresql://... for many stores (default: database in the config "
    "file, else ./channel.sqlite3).",
)
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug), secrets redacted.")
@click.version_option(version=__version__, prog_name="channel")  # no package-metadata scan at start-up
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, db: str | None, verbose: int) -> None:
    """Import orders from online stores and send shipment notifications back.

    Exit codes: 0 success; 1 partial failure (some orders or notifications failed);
    2 configuration or authentication error (the message says what to fix);
    3 stopped early (daily quota, API unavailable); 130 interrupted.
    """
    from channel_core.cli.context import Context

    _configure_logging(verbose)
    ctx.obj = Context(config_path, db)


def main() -> None:
    cli(prog_name="channel")
