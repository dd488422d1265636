"""Text from servers we do not control, made safe to show a model or a person.

Merchant names, descriptions and messages arrive from the network and may carry terminal
escapes, bidi overrides (U+202E), NULs or a hundred thousand characters. `clean_text` is the
one cleaning rule: control and format characters removed (line breaks and tabs become a
space), whitespace folded, length bounded with an ellipsis. The AMP wire models apply it where
the text enters, so every later path (tool results, error texts, approval requests, the CLI)
gets clean text without having to remember.

A few of those texts must also be echoed to the network byte for byte (the merchant name and
MCC signed into a checkout or a mandate scope). `WireText` is the clean text as a `str`, and
keeps the exact original in `.exact` for that one use; `exact()` unwraps it.

What a caller hands us to store (who decided, why, a budget id) is refused rather than cleaned,
so the record says exactly what was given: `one_line` is that rule.
"""

from __future__ import annotations

import unicodedata

from amp_tools.errors import InvalidArguments

__all__ = ["ELLIPSIS", "TEXT_LIMIT", "WireText", "clean_text", "exact", "one_line"]

TEXT_LIMIT = 200
ELLIPSIS = "…"
# Characters that separate words visually: kept as a space rather than glued together.
_BREAKS = frozenset("\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\u2028\u2029")


def clean_text(value: object, limit: int = TEXT_LIMIT) -> str:
    """Printable, single-line, whitespace-folded text of at most `limit` characters.

    Removed: every Unicode "Other" character (controls NUL..US and DEL..APC, bidi and
    zero-width format characters, surrogates, private-use and unassigned code points).
    Longer text is cut to `limit - 1` characters plus "…".
    """
    text = "" if value is None else str(value)
    kept: list[str] = []
    size = 0
    pending_space = False
    cut = False
    for ch in text:
        if ch in _BREAKS or ch.isspace():
            pending_space = bool(kept)
            continue
        if unicodedata.category(ch)[0] == "C":
            continue
        if pending_space:
            kept.append(" ")
            size += 1
            pending_space = False
        kept.append(ch)
        size += 1
        if size > limit:
            cut = True
            break
    if cut:
        return "".join(kept)[: max(0, limit - 1)].rstrip() + ELLIPSIS
    return "".join(kept)


class WireText(str):
    """Clean text that remembers what the server sent.

    As a string (printing, formatting, JSON, comparisons, hashing) it is the clean text; the
    exact original is only reachable as `.exact`, for the places that must send it back.
    """

    exact: str
    limit: int

    def __new__(cls, value: str, limit: int = TEXT_LIMIT) -> WireText:
        original = value.exact if isinstance(value, WireText) else str(value)
        self = super().__new__(cls, clean_text(original, limit))
        self.exact, self.limit = original, limit
        return self

    def __reduce__(self) -> tuple[type[WireText], tuple[str, int]]:
        # Copies (and pickles) keep both faces and the same bound.
        return WireText, (self.exact, self.limit)


def exact(value: str) -> str:
    """The characters the server sent, for echoing them back; plain strings pass through."""
    return value.exact if isinstance(value, WireText) else value


def one_line(name: str, value: object, limit: int, *, required: bool = False, missing: str = "") -> str:
    """`value` stripped, or `InvalidArguments` naming `name` when it is not text, is empty while
    `required` (with `missing` as the message when given), is longer than `limit`, or holds a control
    character (a line break would forge a line in an audit view or a terminal)."""
    if not isinstance(value, str):
        raise InvalidArguments(f"{name} must be text, not {type(value).__name__}")
    text = value.strip()
    if required and not text:
        raise InvalidArguments(missing or f"{name} must not be empty")
    if len(text) > limit:
        raise InvalidArguments(f"{name} is {len(text)} characters long; at most {limit} are allowed")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise InvalidArguments(f"{name} must be one line of printable text")
    return text
