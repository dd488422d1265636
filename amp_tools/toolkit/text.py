"""Making merchant-supplied text safe to show a model.

Merchant names and descriptions come from servers we do not control and may carry hidden
instructions. They are shown as data only: control characters removed, whitespace folded,
length bounded. The AMP wire models already clean them where they enter
(`amp_tools.untrusted`); the toolkit bounds them again, tighter, for compact tool results.
Nothing a merchant writes can reach the policy or an approval anyway.
"""

from __future__ import annotations

from amp_tools.untrusted import clean_text

__all__ = ["clean"]


def clean(value: object, limit: int = 160) -> str:
    """Printable, single-line, at most `limit` characters."""
    return clean_text(value, limit)
