"""Secrets out of the evidence: chain strings, token ids, payment tokens and IDV handles shortened.

What is a secret is `amp_tools._redact`'s rule; here is how evidence shows one: its first 8
characters (enough to match it against a log) and its length. Only the AMP wire's secret fields are
hidden by key, so status fields such as ``tokenStatus`` stay readable for the report.
"""

from __future__ import annotations

from typing import Any

from amp_tools._redact import AMP_SECRET_FIELDS, SecretKind, redact_tree, scrub_text

__all__ = ["SECRET_FIELDS", "redact", "redact_str"]

#: Fields whose values let their holder act for the user (chains, tokens, the IDV handle).
SECRET_FIELDS = AMP_SECRET_FIELDS


def _short(value: str) -> str:
    return f"{value[:8]}…[redacted, {len(value)} chars]" if len(value) > 8 else "…[redacted]"


def _short_any(kind: SecretKind, value: str) -> str:
    return _short(value)


def redact_str(text: str) -> str:
    """Chain strings, payment tokens and 32-hex ids inside free text shortened to a recognisable prefix."""
    return scrub_text(text, _short_any)


def _hide(value: Any) -> Any:
    # Every string under a secret field is shortened, also in a list; an empty one stays empty.
    if isinstance(value, list):
        return [_hide(v) for v in value]
    if isinstance(value, str):
        return _short(value) if value else value
    return redact(value)


def redact(value: Any) -> Any:
    """A copy of a JSON value with every secret shortened (its first 8 characters kept for reference)."""
    return redact_tree(value, SECRET_FIELDS.__contains__, _hide, redact_str)
