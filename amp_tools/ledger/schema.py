"""The ledger and audit schema, versioned in `schema_version`, for SQLite and PostgreSQL.

Times are BIGINT microseconds since the epoch (UTC) in both engines, so the window index and
the comparisons are identical. Each migration is a list of statements applied in one
transaction; `migrate_steps` applies the missing ones and records the new version.

Version 2 adds ``usage_buckets``: per (budget, scope, key) the amount and count of counting
entries per UTC hour and per UTC day, keyed by the bucket's start (see `_ops` for how window sums
use them). The migration backfills them from the existing entries with `backfill_buckets_sql`.

Version 3 carries the payment lifecycle (`amp_tools.payments`): an entry's ``phase`` while it is
reserved (reserved, awaiting_approval, sending, unknown), its ``owner`` and ``lease_until`` (who is
working on it, so recovery never touches a live payment), ``reserved_minor`` (what was held, beside
``budget_minor``, what counts: the amount the network debited once committed), ``resume`` (the sealed
secrets a recovery needs to ask the merchant again) and ``dup_of``. A merchant transaction id can be
committed once per merchant (a unique index); committed duplicates written by earlier versions are
marked with ``dup_of`` (the first entry of that transaction) instead of being changed. ``sessions``
holds each agent session's durable state (checkouts, quotes, mandates, wallet binding; secrets sealed).

Version 4 carries sub-budgets (`amp_tools.policy.subbudgets`): an entry of an agent's budget
(``trip/hotel_booker``) is written once, with ``parents`` (its ancestors' budget ids, root first, as
a JSON list) and ``root_id`` (the first of them), so a commit, release or refund moves the
aggregates of every level and locks the root first; ``budgets.parent`` names a budget's parent for
the tree view. Single-level entries leave all three NULL.

Version 5 gives each budget its own audit chain (``audit.n``, ``audit_heads``; see `audit`): the
records written before it stay verifiable as the legacy chain under the frozen ``audit_head``.

Version 6 makes a budget an object held by its owner (`budgets`): ``budget_policies`` keeps every
version of each budget's policy (canonical JSON, sha256, who, when, note, the diff from the version
before, and the owner's ``signature``, NULL while unsigned); ``budgets.policy_version`` names the version
in force (NULL for a budget seen only in entries, until a process adopts it), ``budgets.policy_hash``
its hash (a reserve under any other policy is refused, rule ``budget.policy_changed``), and ``budgets.signature``
holds the owner's signature over the budget's controls (NULL while unsigned).

Version 7 adds ``approval_signatures``: the owner's signature over each approval decision (see
`amp_tools.owner.decisions`), one row per (approval, decision).

Version 8 adds ``webhook_outbox`` (approval notifications waiting for, or done with, delivery; see
`amp_tools.approvals.outbox`: the body, the endpoint's host and a keyed hash of its URL, never the URL)
and ``login_links`` (the owner console's one-time recovery links, by the SHA-256 of their token).

Version 9 adds ``mcp_tokens`` (`amp_tools.mcp.tokens`): the bearer tokens of ``amp-tools mcp
--transport http``, each bound to one budget, stored as a SHA-256 of the token (never the token),
with who created it, when, and when it was revoked.

Version 10 installs, on PostgreSQL only, the functions ``amp_reserve`` (`_reserve_sql`), the whole
check-and-reserve of a payment in one call to the server, and ``amp_commit`` and ``amp_transition``
(`_commit_sql`), a commit and a lifecycle move in one call each. SQLite has nothing to install.
"""

from __future__ import annotations

from amp_tools.errors import AmpToolsError, ConfigError

from . import controls
from ._commit_sql import COMMIT_FUNCTION, TRANSITION_FUNCTION
from ._reserve_sql import RESERVE_FUNCTION
from ._sql import Dialect, Q, Steps

__all__ = ["DAY_US", "FUNCTION_BODIES", "HOUR_US", "SCHEMA_VERSION", "backfill_buckets_sql", "changed_functions_steps",
           "migrate_steps"]

SCHEMA_VERSION = 10
HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US


def _v1(dialect: Dialect) -> list[str]:
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT" if dialect.name == "sqlite" else "BIGSERIAL PRIMARY KEY"
    return [
        """CREATE TABLE budgets (
            budget_id TEXT PRIMARY KEY,
            currency TEXT NOT NULL,
            used_minor BIGINT NOT NULL,
            used_count BIGINT NOT NULL,
            committed_count BIGINT NOT NULL,
            created_at BIGINT NOT NULL)""",
        """CREATE TABLE usage_totals (
            budget_id TEXT NOT NULL,
            scope TEXT NOT NULL,
            key TEXT NOT NULL,
            label TEXT,
            used_minor BIGINT NOT NULL,
            used_count BIGINT NOT NULL,
            committed_count BIGINT NOT NULL,
            PRIMARY KEY (budget_id, scope, key))""",
        f"""CREATE TABLE entries (
            id {serial},
            budget_id TEXT NOT NULL,
            idempotency_key TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            run_id TEXT NOT NULL,
            action TEXT NOT NULL CHECK (action IN ('pay', 'refund')),
            merchant_id TEXT NOT NULL,
            merchant_name TEXT NOT NULL,
            mcc TEXT,
            amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
            currency TEXT NOT NULL,
            budget_minor BIGINT NOT NULL CHECK (budget_minor > 0),
            budget_currency TEXT NOT NULL,
            fx_rate TEXT,
            checkout_id TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('reserved', 'committed', 'released')),
            counts INTEGER NOT NULL,
            counted_minor BIGINT NOT NULL,
            refunded_minor BIGINT NOT NULL CHECK (refunded_minor <= amount_minor),
            refunded_budget_minor BIGINT NOT NULL,
            external_ref TEXT,
            outcome TEXT,
            reason TEXT,
            decision TEXT,
            policy_hash TEXT,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            audit_seq BIGINT,
            last_audit_seq BIGINT,
            UNIQUE (budget_id, idempotency_key, attempt))""",
        # One live (reserved/committed) entry per key; released attempts stay as history.
        "CREATE UNIQUE INDEX entries_live_key ON entries (budget_id, idempotency_key) WHERE status <> 'released'",
        # Window sums: partial covering indexes over counting rows only.
        # (`counts` is carried too: SQLite needs every referenced column in the index to cover.)
        "CREATE INDEX entries_win_all ON entries (budget_id, created_at, counted_minor, counts) WHERE counts = 1",
        "CREATE INDEX entries_win_merchant ON entries (budget_id, merchant_id, created_at, counted_minor, counts) "
        "WHERE counts = 1",
        "CREATE INDEX entries_win_mcc ON entries (budget_id, mcc, created_at, counted_minor, counts) WHERE counts = 1",
        "CREATE INDEX entries_open ON entries (created_at) WHERE status = 'reserved'",
        "CREATE INDEX entries_by_budget ON entries (budget_id, id)",
        f"""CREATE TABLE refunds (
            id {serial},
            entry_id BIGINT NOT NULL REFERENCES entries (id),
            budget_id TEXT NOT NULL,
            amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
            currency TEXT NOT NULL,
            budget_minor BIGINT NOT NULL,
            budget_currency TEXT NOT NULL,
            external_ref TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            audit_seq BIGINT,
            UNIQUE (entry_id, external_ref))""",
        """CREATE TABLE audit (
            seq BIGINT PRIMARY KEY,
            ts TEXT NOT NULL,
            kind TEXT NOT NULL,
            budget_id TEXT NOT NULL,
            payload TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL)""",
        """CREATE TABLE audit_head (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            seq BIGINT NOT NULL,
            hash TEXT NOT NULL)""",
        "INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '" + "0" * 64 + "')",
    ]


def backfill_buckets_sql(where: str = "") -> list[str]:
    """Statements adding the counting entries (optionally only those matching `where`, an extra
    ``AND ...`` condition) to their hour and day buckets; upserts, so they may top up existing buckets."""
    out = []
    for width in (HOUR_US, DAY_US):
        # Floor to the bucket start for negative times too (SQL % truncates toward zero in both engines).
        start = f"created_at - ((created_at % {width}) + {width}) % {width}"
        for scope, key, group, cond in (("all", "''", "", ""), ("merchant", "merchant_id", "merchant_id, ", ""),
                                        ("mcc", "mcc", "mcc, ", " AND mcc IS NOT NULL")):
            out.append(
                "INSERT INTO usage_buckets (budget_id, scope, key, width, start, used_minor, used_count) "
                f"SELECT budget_id, '{scope}', {key}, {width}, {start}, SUM(counted_minor), COUNT(*) FROM entries "
                f"WHERE counts = 1{cond}{where} GROUP BY budget_id, {group}{start} "
                "ON CONFLICT (budget_id, scope, key, width, start) DO UPDATE SET "
                "used_minor = usage_buckets.used_minor + excluded.used_minor, "
                "used_count = usage_buckets.used_count + excluded.used_count")
    return out


def _v2(dialect: Dialect) -> list[str]:
    return [
        # width: HOUR_US or DAY_US; start: the bucket's first microsecond (UTC). scope 'all' has key ''.
        """CREATE TABLE usage_buckets (
            budget_id TEXT NOT NULL,
            scope TEXT NOT NULL,
            key TEXT NOT NULL,
            width BIGINT NOT NULL,
            start BIGINT NOT NULL,
            used_minor BIGINT NOT NULL,
            used_count BIGINT NOT NULL,
            PRIMARY KEY (budget_id, scope, key, width, start))"""
        # SQLite: the rows live in the primary-key B-tree itself, so a bucket range is one index walk.
        + (" WITHOUT ROWID" if dialect.name == "sqlite" else ""),
        *backfill_buckets_sql(),
    ]


def _v3(dialect: Dialect) -> list[str]:
    return [
        "ALTER TABLE entries ADD COLUMN phase TEXT",
        "ALTER TABLE entries ADD COLUMN owner TEXT",
        "ALTER TABLE entries ADD COLUMN lease_until BIGINT",
        "ALTER TABLE entries ADD COLUMN reserved_minor BIGINT",
        "ALTER TABLE entries ADD COLUMN resume TEXT",
        "ALTER TABLE entries ADD COLUMN dup_of BIGINT",
        # Reservations left by an earlier version have no owner: recovery treats them as possibly sent.
        "UPDATE entries SET phase = 'sending' WHERE status = 'reserved'",
        "UPDATE entries SET reserved_minor = budget_minor",
        "UPDATE entries SET dup_of = (SELECT MIN(o.id) FROM entries o WHERE o.merchant_id = entries.merchant_id "
        "AND o.external_ref = entries.external_ref AND o.status = 'committed' AND o.action = 'pay') "
        "WHERE status = 'committed' AND action = 'pay' AND external_ref IS NOT NULL AND id > (SELECT MIN(o.id) "
        "FROM entries o WHERE o.merchant_id = entries.merchant_id AND o.external_ref = entries.external_ref "
        "AND o.status = 'committed' AND o.action = 'pay')",
        # budget_status's held and debited-above-hold figures read only these few rows, not the budget's history.
        "CREATE INDEX entries_held ON entries (budget_id) WHERE status = 'reserved'",
        "CREATE INDEX entries_over ON entries (budget_id) WHERE status = 'committed' AND budget_minor > reserved_minor",
        "CREATE UNIQUE INDEX entries_paid_ref ON entries (merchant_id, external_ref) "
        "WHERE status = 'committed' AND action = 'pay' AND external_ref IS NOT NULL AND dup_of IS NULL",
        """CREATE TABLE sessions (
            session_id TEXT PRIMARY KEY,
            budget_id TEXT NOT NULL,
            data TEXT NOT NULL,
            version BIGINT NOT NULL,
            updated_at BIGINT NOT NULL)""",
    ]


def _v4(dialect: Dialect) -> list[str]:
    return [
        "ALTER TABLE entries ADD COLUMN parents TEXT",
        "ALTER TABLE entries ADD COLUMN root_id TEXT",
        "ALTER TABLE budgets ADD COLUMN parent TEXT",
    ]


def _v5(dialect: Dialect) -> list[str]:
    statements = [
        # The pre-version-5 records keep n NULL: they stay the legacy chain, checked against the
        # now frozen `audit_head`; every later record belongs to its budget's chain.
        "ALTER TABLE audit ADD COLUMN n BIGINT",
        """CREATE TABLE audit_heads (
            budget_id TEXT PRIMARY KEY,
            n BIGINT NOT NULL,
            seq BIGINT NOT NULL,
            hash TEXT NOT NULL)""",
        # One record per chain position: a fork is refused by the database, and verify walks this index.
        "CREATE UNIQUE INDEX audit_chain ON audit (budget_id, n) WHERE n IS NOT NULL",
        "CREATE INDEX audit_legacy ON audit (seq) WHERE n IS NULL",
    ]
    if dialect.name == "postgresql":
        # The global seq without a global lock (SQLite's single writer takes MAX(seq) + 1 instead).
        statements += ["CREATE SEQUENCE audit_seq_gen",
                       "SELECT setval('audit_seq_gen', (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit), false)"]
    return statements


def _v6(dialect: Dialect) -> list[str]:
    return [
        """CREATE TABLE budget_policies (
            budget_id TEXT NOT NULL,
            version BIGINT NOT NULL CHECK (version > 0),
            policy TEXT NOT NULL,
            policy_hash TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            created_by TEXT NOT NULL,
            note TEXT NOT NULL,
            signature TEXT,
            diff TEXT,
            PRIMARY KEY (budget_id, version))""",
        "ALTER TABLE budgets ADD COLUMN policy_version BIGINT",
        # The version in force's hash beside it: the reserve reads it with the budget row lock it takes anyway.
        "ALTER TABLE budgets ADD COLUMN policy_hash TEXT",
        "ALTER TABLE budgets ADD COLUMN signature TEXT",
    ]


def _v7(dialect: Dialect) -> list[str]:
    return [
        # The owner's signature over each approval decision (approve, deny, reopen), written in the
        # decision's own transaction; an agent pinned to the owner's key takes only signed grants.
        """CREATE TABLE approval_signatures (
            approval_id TEXT NOT NULL,
            decision TEXT NOT NULL CHECK (decision IN ('approve', 'deny', 'reopen')),
            signature TEXT NOT NULL,
            signed_at BIGINT NOT NULL,
            PRIMARY KEY (approval_id, decision))""",
    ]


def _v8(dialect: Dialect) -> list[str]:
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT" if dialect.name == "sqlite" else "BIGSERIAL PRIMARY KEY"
    return [
        f"""CREATE TABLE webhook_outbox (
            id {serial},
            approval_id TEXT NOT NULL,
            budget_id TEXT NOT NULL,
            dest TEXT NOT NULL,
            host TEXT NOT NULL,
            format TEXT NOT NULL,
            body TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
            attempts INTEGER NOT NULL,
            next_us BIGINT NOT NULL,
            lease_us BIGINT,
            created_us BIGINT NOT NULL,
            updated_us BIGINT NOT NULL,
            http_status INTEGER,
            error TEXT NOT NULL,
            UNIQUE (approval_id, dest))""",
        # The worker's scan: only the deliveries still owed, by when they are due.
        "CREATE INDEX webhook_outbox_due ON webhook_outbox (dest, next_us) WHERE status = 'pending'",
        """CREATE TABLE login_links (
            token_hash TEXT PRIMARY KEY,
            created_us BIGINT NOT NULL,
            expires_us BIGINT NOT NULL,
            used_us BIGINT)""",
    ]


def _v9(dialect: Dialect) -> list[str]:
    del dialect  # same text in both engines
    return [
        """CREATE TABLE IF NOT EXISTS mcp_tokens (
            token_id TEXT PRIMARY KEY,
            budget_id TEXT NOT NULL,
            token_hash TEXT NOT NULL UNIQUE,
            label TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_us BIGINT NOT NULL,
            revoked_us BIGINT)""",
    ]


def _v10(dialect: Dialect) -> list[str]:
    # CREATE OR REPLACE: a schema downgraded by hand and migrated again replaces the function in place.
    return [RESERVE_FUNCTION, COMMIT_FUNCTION, TRANSITION_FUNCTION] if dialect.name == "postgresql" else []


#: The functions version 10 installs on PostgreSQL, by name, with the body (the text between the dollar
#: quotes, as ``pg_proc.prosrc`` keeps it) each must have: the same schema version always installs the same text.
FUNCTION_BODIES = {text.split("(", 1)[0].rsplit(" ", 1)[-1]: text.split("$fn$")[1]
                   for text in (RESERVE_FUNCTION, COMMIT_FUNCTION, TRANSITION_FUNCTION)}


def changed_functions_steps(dialect: Dialect) -> Steps[list[str]]:
    """The ledger functions (PostgreSQL) missing or not as this version installs them, by name.

    Anyone who can write the database can ``CREATE OR REPLACE`` a function that skips a cap: every
    process checks them when it opens the ledger, and `audit verify` names them."""
    if dialect.name != "postgresql":
        return []
    rows = yield Q("SELECT proname, prosrc FROM pg_proc WHERE pronamespace = current_schema()::regnamespace "
                   "AND proname IN (?, ?, ?)", tuple(FUNCTION_BODIES))
    found: dict[str, list[str]] = {}
    for name, body in rows:
        found.setdefault(str(name), []).append(str(body))
    # An overload beside the real one would be chosen by no call of ours, but it is not ours either.
    return [name for name, body in FUNCTION_BODIES.items() if found.get(name) != [body]]


_MIGRATIONS = {1: _v1, 2: _v2, 3: _v3, 4: _v4, 5: _v5, 6: _v6, 7: _v7, 8: _v8, 9: _v9, 10: _v10}


def migrate_steps(dialect: Dialect) -> Steps[int]:
    """Bring the schema to `SCHEMA_VERSION`; the caller holds a write lock (or advisory lock)."""
    yield Q("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    rows = yield Q("SELECT MAX(version) FROM schema_version")
    current = int(rows[0][0]) if rows and rows[0][0] is not None else 0
    if current > SCHEMA_VERSION:
        raise ConfigError(f"the ledger database has schema version {current}, newer than this amp-tools "
                          f"({SCHEMA_VERSION}); upgrade amp-tools")
    for version in range(current + 1, SCHEMA_VERSION + 1):
        for statement in _MIGRATIONS[version](dialect):
            yield Q(statement)
        yield Q("INSERT INTO schema_version (version) VALUES (?)", (version,))
    yield from controls.ensure_steps(dialect)  # unversioned, idempotent: the budget kill switch
    changed = yield from changed_functions_steps(dialect)
    if changed:
        raise AmpToolsError(
            f"the ledger's function(s) {', '.join(changed)} are not the ones amp-tools {SCHEMA_VERSION} installs: "
            "someone changed them, and a changed function could pay past a cap; no process opens this ledger",
            code="LEDGER_TAMPERED",
            hint="Find out who changed them (amp-tools audit verify), then reinstall them: as the database owner, "
                 "DELETE FROM schema_version WHERE version = 10; the next open installs them again.")
    return SCHEMA_VERSION
