"""Per-budget audit chains (schema version 5) and the cross-check of the ledger's rows against them:
separate budgets get separate chains, records of before the migration stay verifiable as the legacy
chain, and an edited amount, a flipped status or a deleted entry in the ledger tables is found."""

from __future__ import annotations

import concurrent.futures
import itertools
from pathlib import Path

import pytest
from typer.testing import CliRunner

from amp_tools.cli import app
from amp_tools.clock import ManualClock
from amp_tools.ledger import LedgerBase
from amp_tools.ledger.audit import GENESIS
from amp_tools.ledger.schema import SCHEMA_VERSION
from tests.ledger._ledger_helpers import (
    START,
    downgrade_audit_to_legacy,
    intent,
    open_backend,
    policy,
    raw,
    raw_sync,
    usd,
)


async def _two_budgets(ledger: LedgerBase) -> dict[str, int]:
    """Interleaved payments on budgets a and b, a refund, a release: returns entry ids by key."""
    pol, ids = policy(), {}
    for n, budget in enumerate(("a", "b", "a", "b")):
        res = await ledger.reserve(intent(f"{n + 2}.00", checkout=f"c{n}"), pol, budget_id=budget,
                                   idempotency_key=f"k{n}", run_id="r")
        ids[f"k{n}"] = res.id
    await ledger.commit(ids["k0"], external_ref="pay-0", outcome={"orderId": "o0"})
    await ledger.commit(ids["k1"], external_ref="pay-1", outcome={})
    await ledger.refund(ids["k0"], usd("1.00"), external_ref="rf-0")
    await ledger.release(ids["k3"], reason="declined")
    return ids


async def test_each_budget_has_its_own_chain(ledger: LedgerBase) -> None:
    await _two_budgets(ledger)
    records = await ledger.audit.records()
    assert [r.seq for r in records] == list(range(1, 9))  # one global order
    chains = {b: [r for r in records if r.budget_id == b] for b in ("a", "b")}
    assert [(r.kind, r.n) for r in chains["a"]] == [("reserve", 1), ("reserve", 2), ("commit", 3), ("refund", 4)]
    assert [(r.kind, r.n) for r in chains["b"]] == [("reserve", 1), ("reserve", 2), ("commit", 3), ("release", 4)]
    for chain in chains.values():
        assert chain[0].prev_hash == GENESIS
        assert all(y.prev_hash == x.hash for x, y in itertools.pairwise(chain))
    assert await ledger.audit.heads() == {b: (4, chain[-1].hash) for b, chain in chains.items()}
    report = await ledger.audit.verify()
    assert (report.ok, report.records, report.chains, report.entries) == (True, 8, 2, 4)


async def test_edited_amount_in_the_ledger_is_detected(ledger: LedgerBase) -> None:
    ids = await _two_budgets(ledger)
    await raw(ledger, "UPDATE entries SET amount_minor = 99 WHERE id = ?", ids["k1"])
    report = await ledger.audit.verify()
    assert (report.ok, report.entry_id) == (False, ids["k1"])
    assert f"ledger entry {ids['k1']}: amount_minor is 99 but its audit records say 300" in report.problem
    # The chains themselves are intact: without the cross-check nothing is wrong.
    assert (await ledger.audit.verify(cross_check=False)).ok


async def test_flipped_status_is_detected(ledger: LedgerBase) -> None:
    ids = await _two_budgets(ledger)
    await raw(ledger, "UPDATE entries SET status = 'committed' WHERE id = ?", ids["k2"])
    report = await ledger.audit.verify()
    assert (report.ok, report.entry_id) == (False, ids["k2"])
    assert "status is 'committed' but its audit records say 'reserved'" in report.problem


async def test_deleted_entry_is_detected(ledger: LedgerBase) -> None:
    ids = await _two_budgets(ledger)
    await raw(ledger, "DELETE FROM entries WHERE id = ?", ids["k3"])
    report = await ledger.audit.verify()
    assert (report.ok, report.entry_id) == (False, ids["k3"])
    assert "missing from the ledger: deleted" in report.problem and "key 'k3'" in report.problem


async def test_invented_entry_is_detected(ledger: LedgerBase) -> None:
    ids = await _two_budgets(ledger)
    await raw(ledger, "INSERT INTO entries (budget_id, idempotency_key, attempt, run_id, action, merchant_id, "
                      "merchant_name, amount_minor, currency, budget_minor, budget_currency, checkout_id, status, "
                      "counts, counted_minor, refunded_minor, refunded_budget_minor, created_at, updated_at) "
                      "SELECT budget_id, 'forged', 1, run_id, action, merchant_id, merchant_name, amount_minor, "
                      "currency, budget_minor, budget_currency, checkout_id, 'released', 0, 0, 0, 0, created_at, "
                      "updated_at FROM entries WHERE id = ?", ids["k3"])
    report = await ledger.audit.verify()
    assert not report.ok and "has no reserve record" in report.problem


async def test_edited_refund_and_budget_total_are_detected(ledger: LedgerBase) -> None:
    ids = await _two_budgets(ledger)
    await raw(ledger, "UPDATE refunds SET amount_minor = 50 WHERE entry_id = ?", ids["k0"])
    report = await ledger.audit.verify()
    assert (report.ok, report.entry_id) == (False, ids["k0"])
    assert "amount 50" in report.problem and "amount 100" in report.problem
    await raw(ledger, "UPDATE refunds SET amount_minor = 100 WHERE entry_id = ?", ids["k0"])
    assert (await ledger.audit.verify()).ok
    await raw(ledger, "UPDATE budgets SET used_minor = 1 WHERE budget_id = 'b'")
    report = await ledger.audit.verify()
    assert not report.ok and "budget 'b' totals (used 1 minor units" in report.problem


async def test_v4_database_keeps_its_chain_as_the_legacy_chain(backend: str, tmp_path: Path) -> None:
    from tests.ledger._ledger_helpers import backend_target

    for where in backend_target(backend, tmp_path):
        clock = ManualClock(START)
        ledger = open_backend(backend, where, clock)
        try:
            ids = await _two_budgets(ledger)
            downgrade_audit_to_legacy(ledger)  # what the version before per-budget chains wrote
        finally:
            ledger.close_sync()
        again = open_backend(backend, where, clock)
        try:
            assert raw_sync(again, "SELECT MAX(version) FROM schema_version")[0][0] == SCHEMA_VERSION >= 5
            assert {r.n for r in await again.audit.records()} == {None}
            assert await again.audit.heads() == {}
            # New changes, also to entries reserved before the migration, go to per-budget chains.
            await again.commit(ids["k2"], external_ref="pay-2")
            await again.reserve(intent("1.00", checkout="c9"), policy(), budget_id="b", idempotency_key="k9",
                                run_id="r")
            records = await again.audit.records()
            assert [(r.seq, r.budget_id, r.n) for r in records[8:]] == [(9, "a", 1), (10, "b", 1)]
            report = await again.audit.verify()
            assert (report.ok, report.records, report.chains, report.entries) == (True, 10, 2, 5)
            # The legacy chain is still checked record by record.
            await raw(again, "UPDATE audit SET payload = replace(payload, 'declined', 'ok') WHERE seq = 8")
            report = await again.audit.verify(cross_check=False)
            assert (report.ok, report.first_bad_seq) == (False, 8) and "edited" in report.problem
        finally:
            again.close_sync()


def test_cli_verify_reports_a_ledger_edit(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    ledger = open_backend("sqlite", str(path), ManualClock(START))
    try:
        res = ledger.reserve_sync(intent("4.00"), policy(), budget_id="b", idempotency_key="k", run_id="r")
        ledger.commit_sync(res.id, external_ref="pay-1")
    finally:
        ledger.close_sync()
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify", "--ledger", str(path)])
    assert ok.exit_code == 0
    assert "audit chain ok: 2 records, 1 budget chains, 1 entries cross-checked" in " ".join(ok.output.split())
    ledger = open_backend("sqlite", str(path), ManualClock(START))
    try:
        raw_sync(ledger, "UPDATE entries SET budget_minor = 1, counted_minor = 1 WHERE id = ?", res.id)
        raw_sync(ledger, "UPDATE budgets SET used_minor = 1")
    finally:
        ledger.close_sync()
    bad = runner.invoke(app, ["audit", "verify", "--ledger", str(path)])
    assert bad.exit_code == 1
    assert f"ledger entry {res.id}: budget_minor is 1 but its audit records say 400" in " ".join(bad.output.split())


@pytest.mark.postgres
def test_postgres_separate_budgets_share_no_audit_lock(tmp_path: Path) -> None:
    """While another transaction holds budget a's audit head, a payment on budget b goes through."""
    import psycopg

    from tests.ledger._ledger_helpers import PG_URL, backend_target

    for schema in backend_target("postgres", tmp_path):
        ledger = open_backend("postgres", schema, ManualClock(START))
        try:
            ledger.reserve_sync(intent("1.00"), policy(), budget_id="a", idempotency_key="ka", run_id="r")
            with psycopg.connect(PG_URL, options=f"-c search_path={schema}") as holder:
                holder.execute("SELECT n FROM audit_heads WHERE budget_id = 'a' FOR UPDATE")  # left open
                with concurrent.futures.ThreadPoolExecutor(1) as pool:
                    paid = pool.submit(ledger.reserve_sync, intent("2.00", checkout="c2"), policy(), budget_id="b",
                                       idempotency_key="kb", run_id="r")
                    # Liveness, not speed: with one global head this would wait for `holder` forever.
                    entry = paid.result(timeout=120).entry
                assert (entry.budget_id, entry.budget_amount, entry.status) == ("b", usd("2.00"), "reserved")
                holder.rollback()
            assert ledger.audit.verify_sync().ok
        finally:
            ledger.close_sync()
