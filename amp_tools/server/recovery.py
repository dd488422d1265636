"""The owner's way back in: one-time login links, kept hashed in the ledger's database.

``amp-tools serve --login-link`` (run by whoever can write the ledger, that is the owner) stores the
SHA-256 of a fresh 256-bit token in ``login_links`` with a short expiry and prints a link to the
console. Following it shows a button; pressing it (a same-site POST, so a link preview that fetches the
page cannot use it up) spends the token exactly once (a conditional UPDATE) and opens a session. No
login throttle applies: a token cannot be guessed, so the owner gets in even while someone hammers the
passphrase form.
"""

from __future__ import annotations

import hashlib
import html
import secrets
from datetime import datetime, timedelta

from amp_tools.ledger import LedgerBase
from amp_tools.ledger._sql import Q, Steps, to_us

__all__ = ["LINK_TTL", "create_link", "link_page", "spend_link"]

LINK_TTL = timedelta(minutes=10)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _create_steps(digest: str, now: datetime, expires: datetime) -> Steps[None]:
    # Spent and expired links are of no further use: drop them while we are here.
    yield Q("DELETE FROM login_links WHERE expires_us <= ?", (to_us(now),))
    yield Q("INSERT INTO login_links (token_hash, created_us, expires_us) VALUES (?, ?, ?)",
            (digest, to_us(now), to_us(expires)))


def _spend_steps(digest: str, now: datetime) -> Steps[bool]:
    rows = yield Q("UPDATE login_links SET used_us = ? WHERE token_hash = ? AND used_us IS NULL AND expires_us > ? "
                   "RETURNING token_hash", (to_us(now), digest, to_us(now)))
    return bool(rows)


def create_link(ledger: LedgerBase, console_url: str, ttl: timedelta = LINK_TTL) -> str:
    """Store a new one-time token (hashed) and return the link that spends it."""
    token = secrets.token_urlsafe(32)
    now = ledger.clock.now()
    ledger.run_write_sync(lambda: _create_steps(_hash(token), now, now + ttl))
    return f"{console_url.rstrip('/')}/login/link/{token}"


async def spend_link(ledger: LedgerBase, token: str) -> bool:
    """True exactly once for a stored, unexpired token; False for anything else."""
    if not token or len(token) > 100:
        return False
    now = ledger.clock.now()
    return await ledger.run_write(lambda: _spend_steps(_hash(token), now))


def link_page(token: str) -> str:
    """The page the link opens: one button that spends it."""
    return ("<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content='width=device-width'>"
            "<title>Log in - amp-tools</title><link rel=stylesheet href=/static/app.css><main class=login>"
            "<h1>Log in with a one-time link</h1><p>This link works once and expires soon.</p>"
            "<form method=post action=/login/link>"
            f"<input type=hidden name=token value=\"{html.escape(token, quote=True)}\">"
            "<button type=submit>Log in</button></form></main></html>")
