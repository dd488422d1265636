"""The durable spend ledger: reserve -> commit | release, refunds, usage, and the audit chain.

`open_ledger()` picks the engine from a URL or path: ``postgresql://...`` (or ``postgres://``)
for PostgreSQL, ``sqlite:///absolute/path``, ``sqlite:relative/path``, a plain path or ``:memory:``
for SQLite; anything else is refused before anything is created (`url.parse_ledger_url`). With no
argument it reads ``AMP_TOOLS_LEDGER_URL``, else uses ``$AMP_TOOLS_HOME/ledger.db`` (home ``~/.amp-tools``).

SQLite takes ``durability="full"`` (the default: every commit fsynced, survives power loss) or
``durability="normal"`` (survives a process crash or ``kill -9``; on an OS crash or power loss the
last commits may roll back, i.e. a reservation whose payment was already sent can vanish); see
`amp_tools.ledger.sqlite`.

PostgreSQL takes ``pool_size=`` (server connections per ledger, default 4, or
``AMP_TOOLS_LEDGER_POOL_SIZE``) and ``pool_timeout=`` (seconds a transaction waits for a free
connection before `LedgerBusy`, default 10, or ``AMP_TOOLS_LEDGER_POOL_TIMEOUT``); SQLite has no
connection pool and ignores both, so one configuration serves either engine. See
`amp_tools.ledger.postgres`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# Underscored or type-only, so the package's names are exactly `__all__`.
from amp_tools.config import default_ledger as _default_ledger

from .audit import AuditLog, AuditRecord, VerifyReport
from .base import Ledger, LedgerBase
from .budgets import BudgetExists, PolicyVersion, StaleVersion, StoredBudget
from .records import AlreadyCommitted, Entry, InvalidTransition, Refund, Reservation
from .url import parse_ledger_url

if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    from amp_tools.clock import Clock

    from ._engine import PolicyEngine

__all__ = ["AlreadyCommitted", "AuditLog", "AuditRecord", "BudgetExists", "Entry", "InvalidTransition", "Ledger",
           "LedgerBase", "PolicyVersion", "Refund", "Reservation", "StaleVersion", "StoredBudget", "VerifyReport",
           "open_ledger", "parse_ledger_url"]


def open_ledger(url_or_path: str | Path | None = None, *, clock: Clock | None = None,
                engine: PolicyEngine | None = None, pool_size: int | None = None, pool_timeout: float | None = None,
                **options: Any) -> LedgerBase:
    """Open (and create or migrate) a ledger; see the module docstring for the accepted targets."""
    target = url_or_path if url_or_path is not None else _default_ledger()
    parsed = parse_ledger_url(target)
    if parsed.engine == "postgresql":
        from .postgres import PostgresLedger  # psycopg only when asked for

        return PostgresLedger(parsed.where, clock=clock, engine=engine, pool_size=pool_size,
                              pool_timeout=pool_timeout, **options)
    from .sqlite import SqliteLedger  # its module, so the engine classes stay out of the package's names

    return SqliteLedger(parsed.where, clock=clock, engine=engine, **options)
