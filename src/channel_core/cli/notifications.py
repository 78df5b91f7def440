"""``channel notifications``: the shipment notification ledger, and the operator's controls over it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace

import click
from rich.markup import escape

from channel_core.cli.context import EXIT_CONFIG, Context, Fail, out, pass_context
from channel_core.cli.tables import Column, fitted_table
from channel_core.sync import NotificationRecord, NotificationState, OrderStore

FILTERS = {
    "pending": (NotificationState.PENDING,),
    "failed": (NotificationState.FAILED, NotificationState.PARKED),
    "open": (NotificationState.PENDING, NotificationState.FAILED, NotificationState.PARKED),
}


def _as_dict(r: NotificationRecord) -> dict[str, object]:
    return {
        "id": r.notification_id,
        "channel": r.channel,
        "order_id": r.shipment.order_id,
        "tracking_number": r.shipment.tracking_number,
        "carrier": r.shipment.carrier,
        "tracking_url": r.shipment.tracking_url,
        "status": r.status,
        "attempts": r.attempts,
        "next_attempt": r.next_attempt.isoformat() if r.next_attempt else None,
        "fields_sent": list(r.fields_sent),
        "message": r.message,
    }


@click.group(invoke_without_command=True)
@click.option("--pending", "which", flag_value="pending", help="Only those waiting to be (re)sent.")
@click.option("--failed", "which", flag_value="failed", help="Only refused or parked ones.")
@click.option("--all", "which", flag_value="all", help="Every notification, sent ones included.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def notifications(click_ctx: click.Context, which: str | None, as_json: bool) -> None:
    """List shipment notifications not yet accepted by the store (default), or --all.

    Pending and failed ones are retried by `channel sync` with backoff and parked
    after 5 attempts; `retry ID` and `cancel ID` act on one (an id prefix is enough).
    """
    if click_ctx.invoked_subcommand is not None:
        return
    ctx = click_ctx.find_object(Context)
    assert ctx is not None  # the `channel` group always sets it
    statuses = None if which == "all" else FILTERS[which or "open"]
    with ctx.store(must_exist=True) as store:
        records = store.notifications(statuses)
    if as_json:
        for r in records:
            click.echo(json.dumps(_as_dict(r), ensure_ascii=False, sort_keys=True))
        return
    if not records:
        out.print("No notifications to show." if which == "all" else "No pending or failed notifications.")
        return
    columns = (
        Column("id", keep=9),
        Column("channel", keep=2),
        Column("order", keep=8),
        Column("tracking", keep=6),
        Column("carrier", keep=4, wrap=True),
        Column("status", keep=7),
        Column("attempts", keep=3),
        Column("message", keep=5, wrap=True),
    )
    cells = [
        (
            r.notification_id[:10],
            r.channel,
            r.shipment.order_id,
            r.shipment.tracking_number,
            r.shipment.carrier,
            r.status,
            str(r.attempts),
            r.message or "",
        )
        for r in records
    ]
    out.print(fitted_table(f"{len(records)} notifications", columns, cells, out.width))


def _one(store: OrderStore, prefix: str, allowed: Sequence[str]) -> NotificationRecord:
    matches = [r for r in store.notifications() if r.notification_id.startswith(prefix.lower())]
    if not matches:
        raise Fail(f"no notification with id {prefix!r}; `channel notifications --all` lists them", EXIT_CONFIG)
    if len(matches) > 1:
        raise Fail(f"id {prefix!r} matches {len(matches)} notifications; give more characters", EXIT_CONFIG)
    record = matches[0]
    if record.status not in allowed:
        raise Fail(f"notification {record.notification_id[:10]} is {record.status}; nothing to do", EXIT_CONFIG)
    return record


@notifications.command("retry")
@click.argument("notification_id")
@pass_context
def retry(ctx: Context, notification_id: str) -> None:
    """Make a failed, parked or cancelled notification due again (the next `sync` or `ship` sends it)."""
    with ctx.store(must_exist=True) as store:
        allowed = (*FILTERS["open"], NotificationState.CANCELLED)
        record = _one(store, notification_id, allowed)
        store.save_notification(
            replace(record, status=NotificationState.PENDING, message="retry asked by an operator", attempts=0,
                    next_attempt=None)
        )  # fmt: skip
    out.print(f"Notification {record.notification_id[:10]} for order {escape(record.shipment.order_id)} is due again.")


@notifications.command("cancel")
@click.argument("notification_id")
@pass_context
def cancel(ctx: Context, notification_id: str) -> None:
    """Never send this notification (a shipment entered by mistake)."""
    with ctx.store(must_exist=True) as store:
        record = _one(store, notification_id, FILTERS["open"])
        store.save_notification(
            replace(record, status=NotificationState.CANCELLED, message="cancelled by an operator", next_attempt=None)
        )
    out.print(f"Notification {record.notification_id[:10]} for order {escape(record.shipment.order_id)} cancelled.")
