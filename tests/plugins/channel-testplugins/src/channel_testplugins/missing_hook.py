"""A channel that forgot notify_shipment."""

from channel_core import hookimpl


@hookimpl
def channel_info() -> None:
    return None
