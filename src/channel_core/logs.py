"""Logging helpers. The library logs through structlog and never configures it.

Hosts decide where logs go. :func:`redact_processor` is an opt-in processor a
host can add to its own chain to drop any key that looks like a credential.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import Any

import structlog

from channel_core.secret import Secret

__all__ = ["REDACTED", "get_logger", "redact_processor"]

REDACTED = "[redacted]"
_SENSITIVE_KEY = re.compile(r"(authori[sz]ation|token|secret|password|api_?key|app_?id)", re.IGNORECASE)


def get_logger(name: str) -> Any:
    """Return a lazy structlog logger; bind context inside operations, never at import time."""
    return structlog.get_logger(name)


def redact_processor(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: replace values of credential-like keys and any :class:`Secret`."""
    for key in list(event_dict):
        value = event_dict[key]
        if isinstance(value, Secret) or (key != "event" and _SENSITIVE_KEY.search(key)):
            event_dict[key] = REDACTED
    return event_dict
