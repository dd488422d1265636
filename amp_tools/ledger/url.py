"""Which database a ledger URL names, or a clear refusal: a typo must never create a private ledger.

Accepted: ``sqlite:///abs/path`` (absolute: the path after ``sqlite://``), ``sqlite:relative/path``,
``:memory:``, a plain path (no scheme), ``postgresql://...`` and ``postgres://...`` (lower case, no
driver suffix). Anything else (another scheme, ``postgresql+psycopg://``, ``POSTGRESQL://``,
``postgressql://``, ``mysql://...``, ``sqlite://host/x``) raises `ConfigError` listing the accepted
forms, before any file or connection is made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from amp_tools.errors import ConfigError

__all__ = ["ACCEPTED", "LedgerTarget", "parse_ledger_url"]

ACCEPTED = ("sqlite:///absolute/path.db", "sqlite:relative/path.db", "a plain file path (ledger.db)", ":memory:",
            "postgresql://user@host/db", "postgres://user@host/db")
# A scheme is two or more letters before ':' (a one-letter "scheme" is a Windows drive, C:\...).
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+):")


@dataclass(frozen=True)
class LedgerTarget:
    engine: Literal["sqlite", "postgresql"]
    #: A file path (or ``:memory:``) for SQLite; the URL itself for PostgreSQL.
    where: str


def _refuse(text: str, why: str) -> ConfigError:
    return ConfigError(f"ledger URL {text!r} {why}; nothing was opened or created. Accepted forms: "
                       + ", ".join(ACCEPTED),
                       hint="Fix AMP_TOOLS_LEDGER_URL or --ledger (a typo must not give this host a ledger "
                            "of its own).")


def parse_ledger_url(value: str | Path) -> LedgerTarget:
    """The engine and location a ledger URL or path names (see the module docstring)."""
    if isinstance(value, Path):
        return LedgerTarget("sqlite", str(value))
    text = str(value)
    if not text.strip() or text != text.strip():
        raise _refuse(text, "is empty or has surrounding spaces")
    if text == ":memory:":
        return LedgerTarget("sqlite", text)
    if text.startswith(("postgresql://", "postgres://")):
        return LedgerTarget("postgresql", text)
    match = _SCHEME.match(text)
    if match is None:
        return LedgerTarget("sqlite", text)  # a plain path
    scheme = match.group(1)
    if scheme != "sqlite":
        if scheme.lower().startswith("postgres"):
            raise _refuse(text, f"has scheme {scheme!r}; PostgreSQL is spelled postgresql:// or postgres:// "
                                "(lower case, no driver suffix)")
        raise _refuse(text, f"has scheme {scheme!r}, which is not a ledger database amp-tools can open")
    rest = text[len("sqlite:"):]
    if rest.startswith("///"):
        # sqlite:///srv/x.db -> /srv/x.db (absolute); SQLAlchemy's sqlite:////srv/x.db names the same file.
        path = "/" + rest.lstrip("/")
        if path == "/:memory:":
            return LedgerTarget("sqlite", ":memory:")
        return LedgerTarget("sqlite", path)
    if rest == "//":
        return LedgerTarget("sqlite", ":memory:")  # SQLAlchemy's spelling of an in-memory database
    if rest.startswith("//"):
        raise _refuse(text, "names a host; SQLite takes sqlite:///absolute/path or sqlite:relative/path")
    if not rest:
        raise _refuse(text, "names no file")
    return LedgerTarget("sqlite", rest)
