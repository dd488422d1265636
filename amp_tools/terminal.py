"""Untrusted text made safe for a terminal: the one helper every CLI printer uses.

Merchant names, model-written reasons, policy names and error messages can carry terminal escape
sequences (ESC, CSI, OSC 8 hyperlinks), other control characters, bidi overrides, and rich markup
(``[/oops]`` ends a style that was never opened and raises; ``[link=https://...]`` makes a clickable
link). `terminal_safe` removes every control and format character but the line break, and escapes rich
markup, so the text prints literally inside any rich string, table cell or tree label.
`terminal_plain` is the same without the markup escaping, for output printed with ``markup=False``.
"""

from __future__ import annotations

import unicodedata

from rich.markup import escape

__all__ = ["terminal_plain", "terminal_safe"]


def terminal_plain(value: object) -> str:
    """`value` as text with no control or format characters (tabs become spaces; line breaks stay)."""
    text = "" if value is None else str(value)
    out = []
    for ch in text:
        if ch == "\n":
            out.append(ch)
        elif ch == "\t":
            out.append(" ")
        elif unicodedata.category(ch)[0] != "C":
            out.append(ch)
    return "".join(out)


def terminal_safe(value: object) -> str:
    """`terminal_plain(value)` with rich markup escaped: prints literally wherever rich parses markup."""
    return escape(terminal_plain(value))
