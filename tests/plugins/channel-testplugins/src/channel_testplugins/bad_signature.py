"""A channel whose connect takes an argument the spec does not define."""

from channel_core import hookimpl


@hookimpl
def connect(settings, api_key):  # type: ignore[no-untyped-def]
    return None
