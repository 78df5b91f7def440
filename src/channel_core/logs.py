"""Logging helpers. The library logs through structlog and never configures it.

Hosts decide where logs go:

* a host that configured structlog gets every event through its own chain;
* a host that did not gets them through the standard :mod:`logging` module,
  under the emitting module's name (``channel_core.http``, ``channel_core.sync.importer``):
  with no logging set up either, Python shows only WARNING and above, on stderr.
  The library never writes to stdout on its own.

:func:`redact_processor` is an opt-in processor a host can add to its own chain
to drop any key that looks like a credential; the standard-logging route applies it always.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

from channel_core.secret import Secret

__all__ = ["REDACTED", "LibraryLogger", "get_logger", "redact_processor"]

REDACTED = "[redacted]"
_SENSITIVE_KEY = re.compile(r"(authori[sz]ation|token|secret|password|api_?key|app_?id)", re.IGNORECASE)


_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


class LibraryLogger:
    """A structlog-style logger that follows the host: structlog when configured, else :mod:`logging`."""

    __slots__ = ("_context", "_name", "_stdlib", "_structlog")

    def __init__(self, name: str, context: dict[str, Any] | None = None) -> None:
        self._name = name
        self._context = context or {}
        self._stdlib = logging.getLogger(name)
        self._structlog: Any = None  # structlog's lazy proxy, made once: it follows the host's later configure()

    def bind(self, **values: Any) -> LibraryLogger:
        return LibraryLogger(self._name, {**self._context, **values})

    def _log(self, level: str, event: str, values: dict[str, Any]) -> None:
        structlog = sys.modules.get("structlog")  # a host that never imported structlog has not configured it
        if structlog is not None and structlog.is_configured():
            if self._structlog is None:
                self._structlog = structlog.get_logger(self._name)
            getattr(self._structlog, level)(event, **self._context, **values)
            return
        number = _LEVELS[level]
        if not self._stdlib.isEnabledFor(number):
            return
        fields = redact_processor(None, level, {**self._context, **values})
        text = " ".join(f"{key}={value!r}" for key, value in fields.items())
        self._stdlib.log(number, "%s %s", event, text, extra={"event_fields": dict(fields)})

    def debug(self, event: str, **values: Any) -> None:
        self._log("debug", event, values)

    def info(self, event: str, **values: Any) -> None:
        self._log("info", event, values)

    def warning(self, event: str, **values: Any) -> None:
        self._log("warning", event, values)

    def error(self, event: str, **values: Any) -> None:
        self._log("error", event, values)


def get_logger(name: str) -> LibraryLogger:
    """A logger for a library module; bind context inside operations, never at import time."""
    return LibraryLogger(name)


def redact_processor(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: replace values of credential-like keys and any :class:`Secret`."""
    for key in list(event_dict):
        value = event_dict[key]
        if isinstance(value, Secret) or (key != "event" and _SENSITIVE_KEY.search(key)):
            event_dict[key] = REDACTED
    return event_dict
