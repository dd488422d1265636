"""Keeping tool results small enough for a model's context.

Two helpers: `first_of` summarises a list a tool chose to show (the first few, and how many
more there are), and `bound_result` is the backstop every `ToolSpec` applies to whatever a tool
returns: a result whose JSON is larger than `MAX_RESULT_CHARS` has its lists and mappings cut
(with a note of what was left out) and its long strings shortened, until it fits.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["MAX_RESULT_CHARS", "bound_result", "first_of", "size_of"]

MAX_RESULT_CHARS = 12_000
# Successively tighter cuts: (items kept per list or mapping, characters kept per string).
_STEPS = ((20, 400), (8, 160), (3, 80), (1, 40))


def size_of(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, default=str))


def first_of(items: list[Any], limit: int, what: str) -> tuple[list[Any], str | None]:
    """The first `limit` items and, when some are left out, a note saying how many."""
    if len(items) <= limit:
        return items, None
    return items[:limit], f"{len(items) - limit} more {what} not shown"


def _cut(value: Any, items: int, chars: int) -> Any:
    if isinstance(value, str):
        return value if len(value) <= chars else value[: chars - 1] + "…"
    if isinstance(value, list):
        kept = [_cut(v, items, chars) for v in value[:items]]
        if len(value) > items:
            kept.append(f"… {len(value) - items} more not shown")
        return kept
    if isinstance(value, dict):
        keys = list(value)
        out = {k: _cut(value[k], items, chars) for k in keys[:items]}
        if len(keys) > items:
            out["not_shown"] = f"{len(keys) - items} more entries"
        return out
    return value


def bound_result(result: dict[str, Any], limit: int = MAX_RESULT_CHARS) -> dict[str, Any]:
    """`result` unchanged when it fits in `limit` JSON characters, else cut down until it does."""
    if size_of(result) <= limit:
        return result
    for items, chars in _STEPS:
        # The top level keeps all its keys (status, amounts, ids); only what is under them is cut.
        cut = {k: _cut(v, items, chars) for k, v in result.items()}
        if size_of(cut) <= limit - 100:  # room for the note below
            cut["truncated"] = "this result was too large and was shortened; ask for something narrower"
            return cut
    return {"truncated": "this result was too large to show; ask for something narrower",
            "keys": list(result)[:20]}
