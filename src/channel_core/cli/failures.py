"""``channel failures``: orders whose import failed, and retrying them."""

from __future__ import annotations

import json

import click

from channel_core.cli.context import EXIT_CONFIG, Context, Fail, out, pass_context
from channel_core.cli.tables import Column, fitted_table


@click.group(invoke_without_command=True)
@click.option("--channel", "channel_name", default=None, help="Only this channel.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def failures(click_ctx: click.Context, channel_name: str | None, as_json: bool) -> None:
    """List orders whose import failed: retried with backoff, parked after 5 attempts.

    A parked order is fetched again when it changes in the store, or after
    `channel failures retry`.
    """
    if click_ctx.invoked_subcommand is not None:
        return
    ctx = click_ctx.find_object(Context)
    assert ctx is not None  # the `channel` group always sets it
    with ctx.store(must_exist=True) as store:
        records = store.failed_orders(channel_name)
    if as_json:
        for r in records:
            row = {
                "channel": r.channel,
                "account_id": r.account_id,
                "order_id": r.order_id,
                "error": r.error,
                "attempts": r.attempts,
                "last_seen": r.last_seen.isoformat(),
                "next_attempt": r.next_attempt.isoformat(),
                "parked": r.parked,
            }
            click.echo(json.dumps(row, ensure_ascii=False, sort_keys=True))
        return
    if not records:
        out.print("No failed orders.")
        return
    columns = (
        Column("channel", keep=2),
        Column("order", keep=9),
        Column("attempts", keep=5),
        Column("state", keep=8),
        Column("next attempt (UTC)", keep=4),
        Column("error", keep=7, wrap=True),
    )
    cells = [
        (
            r.channel,
            r.order_id,
            str(r.attempts),
            "parked" if r.parked else "retrying",
            "when it changes" if r.parked else r.next_attempt.strftime("%Y-%m-%d %H:%M"),
            r.error,
        )
        for r in records
    ]
    out.print(fitted_table(f"{len(records)} failed orders", columns, cells, out.width))


@failures.command("retry")
@click.argument("channel_name")
@click.argument("order_ids", nargs=-1)
@click.option("--all", "retry_all", is_flag=True, help="Every failed order of the channel.")
@pass_context
def retry(ctx: Context, channel_name: str, order_ids: tuple[str, ...], retry_all: bool) -> None:
    """Unpark failed orders so the next import asks for them again."""
    if not order_ids and not retry_all:
        raise Fail("name the order ids to retry, or pass --all", EXIT_CONFIG)
    with ctx.store(must_exist=True) as store:
        if retry_all:
            count = store.retry_failed(channel_name, None, None)
        else:
            unknown = [oid for oid in order_ids if store.retry_failed(channel_name, None, oid) == 0]
            if unknown:
                raise Fail(f"no failed order {', '.join(unknown)} for channel {channel_name!r}", EXIT_CONFIG)
            count = len(order_ids)
    out.print(f"{count} failed orders will be asked for again by the next import.")
