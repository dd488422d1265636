"""Making merchant-supplied text safe to show a model.

Merchant names and descriptions come from servers we do not control and may carry hidden
instructions. They are shown as data only: control characters removed, whitespace folded,
length bounded. Nothing a merchant writes can reach the policy or an approval anyway.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["clean"]

_SPACE = re.compile(r"\s+")


def clean(value: object, limit: int = 160) -> str:
    """Printable, single-line, at most `limit` characters."""
    text = "" if value is None else str(value)
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C" or ch in " \t\n")
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
