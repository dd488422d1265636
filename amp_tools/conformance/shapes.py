"""Small assertions on JSON shapes that name the field and what was expected."""

from __future__ import annotations

from typing import Any

__all__ = ["missing_fields", "obj", "shape_problems"]


def obj(value: Any) -> dict[str, Any]:
    """`value` when it is a JSON object, else an empty one (so ``.get`` chains never crash on odd answers)."""
    return value if isinstance(value, dict) else {}


def missing_fields(body: Any, names: tuple[str, ...]) -> list[str]:
    """Fields absent from `body` (present with ``null`` counts as present)."""
    if not isinstance(body, dict):
        return list(names)
    return [n for n in names if n not in body]


def shape_problems(body: Any, expect: dict[str, type | tuple[type, ...]]) -> list[str]:
    """``field: expected type, got ...`` for every field of `expect` that is missing or of another type."""
    if not isinstance(body, dict):
        return [f"the body is {type(body).__name__}, not a JSON object"]
    out = []
    for name, kind in expect.items():
        if name not in body:
            out.append(f"{name}: missing")
            continue
        value = body[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            out.append(f"{name}: expected {'/'.join(k.__name__ for k in kinds)}, got a boolean")
        elif not isinstance(value, kinds):
            out.append(f"{name}: expected {'/'.join(k.__name__ for k in kinds)}, got {type(value).__name__}")
    return out
