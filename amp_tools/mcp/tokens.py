"""Bearer tokens of the MCP HTTP server, each bound to one budget, stored hashed in the ledger.

Owns the ``mcp_tokens`` table (schema version 6). A token reads ``ampmcp_<id>_<secret>``: the id
finds the row, the whole token's SHA-256 is compared in constant time. The token itself is shown
once, when created (``amp-tools mcp tokens create --budget ID``), and never stored or logged; 32
random bytes make a plain hash enough (nothing to brute-force, unlike a passphrase). Creating and
revoking a token append an audit record to its budget's chain.

Imports no MCP SDK: the CLI manages tokens without the ``[mcp]`` extra.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from amp_tools.clock import SYSTEM_CLOCK, Clock
from amp_tools.errors import InvalidArguments, NotFound
from amp_tools.ledger import LedgerBase
from amp_tools.ledger._sql import Q, Steps, from_us, to_us
from amp_tools.ledger.audit import append_steps

__all__ = ["PREFIX", "IssuedToken", "TokenRecord", "TokenStore"]

PREFIX = "ampmcp_"
_TOKEN = re.compile(r"^ampmcp_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_BUDGET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/\-]{0,127}$")
_COLUMNS = "token_id, budget_id, label, created_by, created_us, revoked_us"


@dataclass(frozen=True)
class TokenRecord:
    """A stored token, without its secret."""

    token_id: str
    budget_id: str
    label: str
    created_by: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class IssuedToken:
    """A new token: `token` is shown to the owner once and exists nowhere else."""

    token: str
    record: TokenRecord


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _record(row: tuple[object, ...]) -> TokenRecord:
    revoked = row[5]
    return TokenRecord(str(row[0]), str(row[1]), str(row[2]), str(row[3]), from_us(int(str(row[4]))),
                       from_us(int(str(revoked))) if revoked is not None else None)


def _line(name: str, value: str, limit: int) -> str:
    text = value.strip()
    if len(text) > limit or any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise InvalidArguments(f"{name} must be one line of printable text of at most {limit} characters")
    return text


class TokenStore:
    """Create, list, revoke and verify MCP bearer tokens in the ledger's database."""

    def __init__(self, ledger: LedgerBase, *, clock: Clock | None = None) -> None:
        self.ledger = ledger
        self.clock: Clock = clock or ledger.clock or SYSTEM_CLOCK

    def create(self, budget_id: str, *, label: str = "", by: str = "cli") -> IssuedToken:
        if not _BUDGET.fullmatch(budget_id or ""):
            raise InvalidArguments(f"budget id {budget_id[:60]!r} is not valid",
                                   hint="Use letters, digits and . _ : / -, starting with a letter or digit.")
        label, by = _line("--label", label, 100), _line("--by", by, 100) or "cli"
        if self.ledger.get_budget_sync(budget_id) is None:
            raise NotFound(f"budget {budget_id!r} is not in this ledger, so a token for it could spend nothing",
                           hint=f"Create it first: amp-tools budgets create {budget_id} --policy FILE "
                                "(or check --ledger).")
        token_id = secrets.token_hex(6)
        token = f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        now = self.clock.now()
        dialect = self.ledger.dialect

        def steps() -> Steps[None]:
            yield Q("INSERT INTO mcp_tokens (token_id, budget_id, token_hash, label, created_by, created_us) "
                    "VALUES (?, ?, ?, ?, ?, ?)", (token_id, budget_id, _hash(token), label, by, to_us(now)))
            yield from append_steps(dialect, "mcp_token.created", {"token_id": token_id, "label": label, "by": by},
                                    budget_id=budget_id, at=now)

        self.ledger.run_write_sync(steps)
        return IssuedToken(token, TokenRecord(token_id, budget_id, label, by, now, None))

    def list(self, *, include_revoked: bool = False) -> list[TokenRecord]:
        where = "" if include_revoked else " WHERE revoked_us IS NULL"

        def steps() -> Steps[list[TokenRecord]]:
            rows = yield Q(f"SELECT {_COLUMNS} FROM mcp_tokens{where} ORDER BY created_us, token_id")
            return [_record(tuple(r)) for r in rows]

        return self.ledger.run_read_sync(steps)

    def revoke(self, token_id: str, *, by: str = "cli") -> TokenRecord:
        token_id = token_id.strip().removeprefix(PREFIX)[:12]
        by = _line("--by", by, 100) or "cli"
        now = self.clock.now()
        dialect = self.ledger.dialect

        def steps() -> Steps[TokenRecord]:
            rows = yield Q(f"SELECT {_COLUMNS} FROM mcp_tokens WHERE token_id = ?", (token_id,))
            if not rows:
                raise NotFound(f"there is no MCP token {token_id!r}", hint="See `amp-tools mcp tokens list`.")
            record = _record(tuple(rows[0]))
            if record.revoked_at is not None:
                return record
            yield Q("UPDATE mcp_tokens SET revoked_us = ? WHERE token_id = ?", (to_us(now), token_id))
            yield from append_steps(dialect, "mcp_token.revoked", {"token_id": token_id, "by": by},
                                    budget_id=record.budget_id, at=now)
            return TokenRecord(record.token_id, record.budget_id, record.label, record.created_by,
                               record.created_at, now)

        return self.ledger.run_write_sync(steps)

    async def verify(self, token: str) -> TokenRecord | None:
        """The active token's record, or None for anything else (malformed, unknown, wrong secret, revoked)."""
        match = _TOKEN.fullmatch(token or "")
        if match is None:
            return None
        token_id = match.group(1)

        def steps() -> Steps[tuple[TokenRecord, str] | None]:
            rows = yield Q(f"SELECT {_COLUMNS}, token_hash FROM mcp_tokens WHERE token_id = ?", (token_id,))
            return (_record(tuple(rows[0])), str(rows[0][6])) if rows else None

        found = await self.ledger.run_read(steps)
        if found is None:
            return None
        record, stored = found
        if not hmac.compare_digest(stored, _hash(token)) or record.revoked_at is not None:
            return None
        return record
