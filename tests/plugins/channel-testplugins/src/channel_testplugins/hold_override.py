"""An extension that maps the code 'hold' to on_hold for every channel, before the channel does."""

from channel_core import Connection, OrderStatus, hookimpl


@hookimpl(tryfirst=True)
def map_status(connection: Connection, channel_status: str) -> OrderStatus | None:
    return OrderStatus.ON_HOLD if channel_status == "hold" else None
