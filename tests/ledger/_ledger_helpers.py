"""Shared helpers of the ledger and audit tests: backends, policies, intents, raw SQL.

Also imported by spawned worker processes, so it must stay importable without pytest fixtures.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from amp_tools.clock import ManualClock
from amp_tools.ledger import LedgerBase, open_ledger
from amp_tools.ledger._sql import Q, Row, Steps
from amp_tools.money import ROUND_UP, Money
from amp_tools.policy import BudgetPolicy, SpendIntent

PG_URL = os.environ.get("AMP_TOOLS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
START = datetime(2025, 6, 11, 12, 0, tzinfo=UTC)  # a Wednesday, noon UTC


def pg_available() -> str | None:
    """None when the test server answers, else why not."""
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return None
    except Exception as exc:
        return f"PostgreSQL at {PG_URL} is unreachable: {exc}"


def require_pg() -> None:
    import pytest  # not at module level: spawned workers import this module and need no pytest

    reason = pg_available()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the PostgreSQL tests must run)")
    pytest.skip(reason)


def new_schema() -> str:
    return f"amp_test_{os.getpid()}_{uuid.uuid4().hex[:10]}"


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def open_backend(backend: str, where: str, clock: ManualClock | None = None) -> LedgerBase:
    """`where` is a file path for sqlite, a schema name for postgres."""
    if backend == "sqlite":
        return open_ledger(where, clock=clock)
    return open_ledger(PG_URL, clock=clock, schema=where)


def backend_target(backend: str, tmp_path: Any) -> Iterator[str]:
    if backend == "sqlite":
        yield str(tmp_path / "ledger.db")
        return
    require_pg()
    schema = new_schema()
    try:
        yield schema
    finally:
        drop_schema(schema)


def policy(**overrides: Any) -> BudgetPolicy:
    data: dict[str, Any] = {"name": "test", "currency": "USD", "total_budget": "100.00"}
    data.update(overrides)
    return BudgetPolicy.model_validate(data)


def intent(amount: str = "10.00", *, merchant: str = "shop-1", mcc: str | None = "5812", at: datetime = START,
           checkout: str = "co-1", currency: str = "USD", rate: str | None = None, action: str = "pay",
           budget_currency: str = "USD", human_present: bool = False) -> SpendIntent:
    money = Money.parse(amount, currency)
    if currency == budget_currency:
        budget = money
    else:
        assert rate is not None
        budget = money.convert(budget_currency, rate, rounding=ROUND_UP)
    return SpendIntent(action, merchant, merchant.upper(), mcc, money, budget,  # type: ignore[arg-type]
                       None if rate is None else Decimal(rate), (), human_present, checkout, at)


def usd(text: str) -> Money:
    return Money.parse(text, "USD")


def raw_steps(sql: str, params: tuple[Any, ...] = ()) -> Steps[list[Row]]:
    rows = yield Q(sql, params)
    return rows


async def raw(ledger: LedgerBase, sql: str, *params: Any) -> list[Row]:
    """Run one statement in its own write transaction (tests tamper and inspect with it)."""
    return await ledger.run_write(lambda: raw_steps(sql, params))


def raw_sync(ledger: LedgerBase, sql: str, *params: Any) -> list[Row]:
    return ledger._run_write_sync(lambda: raw_steps(sql, params))


# ----------------------------------------------------------------------------- stress worker
STRESS_POLICY: dict[str, Any] = {
    "name": "stress", "currency": "USD", "total_budget": "50.00",
    "windows": {"day": {"limit": "40.00"}},
    "merchants": {"caps": {f"m{i}": "12.00" for i in range(4)}},
}
STRESS_MERCHANTS = [f"m{i}" for i in range(4)]


def stress_run(ledger: LedgerBase, worker: int, attempts: int) -> dict[str, Any]:
    """`attempts` 1.00 USD payments at random merchants; commits about 3/4 of the allowed ones."""
    import random

    from amp_tools.errors import PolicyViolation

    rng = random.Random(worker)
    pol = BudgetPolicy.model_validate(STRESS_POLICY)
    tried: dict[str, int] = {m: 0 for m in STRESS_MERCHANTS}
    ok = refused = 0
    for n in range(attempts):
        merchant = rng.choice(STRESS_MERCHANTS)
        tried[merchant] += 1
        try:
            res = ledger.reserve_sync(intent("1.00", merchant=merchant, checkout=f"w{worker}-{n}"), pol,
                                      budget_id="stress", idempotency_key=f"w{worker}-{n}", run_id=f"w{worker}")
        except PolicyViolation:
            refused += 1
            continue
        ok += 1
        if rng.random() < 0.75:
            ledger.commit_sync(res.id, external_ref=f"ref-{worker}-{n}")
    return {"ok": ok, "refused": refused, "tried": tried}


_BARRIER: Any = None


def init_worker(barrier: Any) -> None:
    """Pool initializer: keep the start barrier so every worker begins together in its own process."""
    global _BARRIER
    _BARRIER = barrier


def stress_worker(args: tuple[str, str, int, int]) -> dict[str, Any]:
    """One spawned process with its own ledger on the shared file or schema."""
    backend, where, worker, attempts = args
    ledger = open_backend(backend, where, ManualClock(START))
    if _BARRIER is not None:
        _BARRIER.wait(timeout=120)  # a process blocked here cannot take a second task: 8 tasks, 8 processes
    try:
        return {**stress_run(ledger, worker, attempts), "pid": os.getpid()}
    finally:
        ledger.close_sync()


V3_COLUMNS = ("phase", "owner", "lease_until", "reserved_minor", "resume", "dup_of")


LATER_TABLES = ("approval_signatures", "webhook_outbox", "login_links", "mcp_tokens")


def downgrade_to_v5(ledger: LedgerBase) -> None:
    """Take a ledger's schema back to version 5 (before stored budgets); a no-op when it is already older."""
    if raw_sync(ledger, "SELECT MAX(version) FROM schema_version")[0][0] < 6:
        return
    raw_sync(ledger, "DROP TABLE budget_policies")
    # the tables of later versions (owner signatures, webhook outbox, login links, MCP tokens)
    for table in LATER_TABLES:
        raw_sync(ledger, f"DROP TABLE IF EXISTS {table}")
    raw_sync(ledger, "ALTER TABLE budgets DROP COLUMN policy_version")
    raw_sync(ledger, "ALTER TABLE budgets DROP COLUMN signature")
    raw_sync(ledger, "ALTER TABLE budgets DROP COLUMN policy_hash")
    if ledger.dialect.name == "postgresql":  # version 10's functions
        for function in ("amp_reserve", "amp_commit", "amp_transition"):
            raw_sync(ledger, f"DROP FUNCTION IF EXISTS {function}(text, boolean, boolean)")
    raw_sync(ledger, "DELETE FROM schema_version WHERE version > 5")


def downgrade_to_v3(ledger: LedgerBase) -> None:
    """Take a ledger's schema back to version 3 (before sub-budgets)."""
    downgrade_to_v5(ledger)
    raw_sync(ledger, "ALTER TABLE entries DROP COLUMN parents")
    raw_sync(ledger, "ALTER TABLE entries DROP COLUMN root_id")
    raw_sync(ledger, "ALTER TABLE budgets DROP COLUMN parent")
    raw_sync(ledger, "DELETE FROM schema_version WHERE version > 3")


def downgrade_audit_to_legacy(ledger: LedgerBase) -> None:
    """Take the audit back to one global chain (what amp-tools before per-budget chains wrote): the
    records are relinked in seq order and rehashed without their chain position, as that version did."""
    downgrade_to_v5(ledger)
    from amp_tools.ledger.audit import GENESIS, record_hash

    prev = GENESIS
    rows = raw_sync(ledger, "SELECT seq, ts, kind, budget_id, payload FROM audit ORDER BY seq")
    for seq, ts, kind, budget_id, payload in rows:
        digest = record_hash(prev, int(seq), str(ts), str(kind), str(budget_id), json.loads(payload))
        raw_sync(ledger, "UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?", prev, digest, seq)
        prev = digest
    raw_sync(ledger, "UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", int(rows[-1][0]) if rows else 0, prev)
    raw_sync(ledger, "DROP INDEX audit_chain")
    raw_sync(ledger, "DROP INDEX audit_legacy")
    raw_sync(ledger, "ALTER TABLE audit DROP COLUMN n")
    raw_sync(ledger, "DROP TABLE audit_heads")
    if ledger.dialect.name == "postgresql":
        raw_sync(ledger, "DROP SEQUENCE audit_seq_gen")
    raw_sync(ledger, "DELETE FROM schema_version WHERE version > 4")


def downgrade_to_v2(ledger: LedgerBase) -> None:
    """Take a ledger's schema back to version 2 (what amp-tools before the payment lifecycle wrote)."""
    downgrade_audit_to_legacy(ledger)
    downgrade_to_v3(ledger)
    raw_sync(ledger, "DROP INDEX entries_paid_ref")
    raw_sync(ledger, "DROP INDEX entries_held")
    raw_sync(ledger, "DROP INDEX entries_over")
    raw_sync(ledger, "DROP TABLE sessions")
    for column in V3_COLUMNS:
        raw_sync(ledger, f"ALTER TABLE entries DROP COLUMN {column}")
    raw_sync(ledger, "DELETE FROM schema_version WHERE version > 2")
