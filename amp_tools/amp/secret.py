"""`Secret`: a string that never shows itself by accident.

L1/L2/L3 serializations, the Alipay+ token id and payment tokens travel through result
objects, logs and tool state. Wrapping them in `Secret` keeps them out of `repr`, `str`,
f-strings, `json.dumps` and pydantic's JSON output; only an explicit `reveal()` returns
the value.
"""

from __future__ import annotations

import hmac
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

__all__ = ["Secret", "reveal"]

_PREVIEW = 8


class Secret:
    """A redacted string: ``Secret('eyJhbGci…', 528 chars)``."""

    __slots__ = ("_value",)
    _value: str

    def __init__(self, value: str) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError(f"Secret wraps a str, not {type(value).__name__}")
        object.__setattr__(self, "_value", value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Secret is immutable")

    def reveal(self) -> str:
        """The wrapped value. Call it only where the value leaves for its one legitimate peer."""
        return str(self._value)

    def __len__(self) -> int:
        return len(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def _preview(self) -> str:
        # At most a quarter of the value, so a short secret never shows most of itself.
        n = min(_PREVIEW, len(self._value) // 4)
        return self._value[:n] + "…"

    def __repr__(self) -> str:
        return f"Secret({self._preview()!r}, {len(self._value)} chars)"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return format(repr(self), spec)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            return hmac.compare_digest(self._value.encode(), other._value.encode())
        return NotImplemented

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> Any:
        # Pickling is an explicit persistence step; keep it possible but never via str().
        return (Secret, (self._value,))

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        def _validate(value: Any) -> Secret:
            if isinstance(value, Secret):
                return value
            if isinstance(value, str):
                return Secret(value)
            raise ValueError("expected a string")

        return core_schema.no_info_plain_validator_function(
            _validate,
            # JSON output shows the redacted form; python-mode dumps keep the object.
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda v: repr(v), when_used="json"),
        )


def reveal(value: Secret | str | None) -> str | None:
    """`value.reveal()` for a Secret, the value itself for a str, None for None."""
    if value is None:
        return None
    return value.reveal() if isinstance(value, Secret) else value
