"""A string type for credentials that never shows its value by accident."""

from __future__ import annotations

from typing import Any

__all__ = ["Secret"]

_MASK = "***"


class Secret:
    """Holds a credential. ``str()``, ``repr()``, f-strings and pickling show ``***``.

    The value is only reachable through :meth:`reveal`, which the code that builds
    a request calls at the last moment. Two secrets compare equal when their values do.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError("Secret value must be a string")
        self._value = value

    def reveal(self) -> str:
        """Return the real value. Call only where the request is built."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __str__(self) -> str:
        return _MASK

    def __repr__(self) -> str:
        return f"Secret({_MASK!r})"

    def __format__(self, spec: str) -> str:
        return _MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> Any:
        raise TypeError("Secret values cannot be pickled")
