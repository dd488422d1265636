"""The audit chains: every ledger change appends a record linked into its budget's chain; verify()
finds edits, reorders, deletions and a truncated tail; export writes chains anyone can recheck."""

from __future__ import annotations

import io
import itertools
import json
from pathlib import Path

import pytest

from amp_tools.ledger import LedgerBase
from amp_tools.ledger.audit import GENESIS, record_hash
from tests.ledger._ledger_helpers import intent, policy, raw, usd


async def _history(ledger: LedgerBase) -> None:
    """reserve, commit, refund, reserve, release, plus one decision record: 6 records."""
    pol = policy()
    first = await ledger.reserve(intent("20.00"), pol, budget_id="b", idempotency_key="k1", run_id="r")
    await ledger.commit(first.id, external_ref="pay-1", outcome={"orderId": "o1", "l3": "eyJ...secret"})
    await ledger.refund(first.id, usd("5.00"), external_ref="rf-1")
    second = await ledger.reserve(intent("3.00", checkout="c2"), pol, budget_id="b", idempotency_key="k2", run_id="r")
    await ledger.release(second.id, reason="declined")
    await ledger.audit.append("approval", {"approval_id": "ap-1", "approver": "alice", "token": "t0p"},
                              budget_id="b")


async def test_every_change_is_linked_and_verifies(ledger: LedgerBase) -> None:
    await _history(ledger)
    records = await ledger.audit.records()
    assert [r.kind for r in records] == ["reserve", "commit", "refund", "reserve", "release", "approval"]
    assert [r.seq for r in records] == [1, 2, 3, 4, 5, 6]
    assert [r.n for r in records] == [1, 2, 3, 4, 5, 6]  # one budget: its chain is every record
    assert records[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(records))
    reserve = records[0].payload
    assert reserve["policy_hash"] == policy().snapshot_hash() and reserve["decision"] == "allow"
    assert reserve["budget_amount"] == {"minor": 2000, "currency": "USD"}
    assert reserve["usage"]["total_budget"] == {"minor": 0, "count": 0}
    assert records[1].payload["outcome"] == {"orderId": "o1", "l3": "[redacted]"}
    assert records[5].payload == {"approval_id": "ap-1", "approver": "alice", "token": "[redacted]"}
    entries = {e.idempotency_key: e for e in await ledger.entries("b")}
    assert (entries["k1"].audit_seq, entries["k1"].last_audit_seq) == (1, 3)
    assert (entries["k2"].audit_seq, entries["k2"].last_audit_seq) == (4, 5)
    assert [r.audit_seq for r in await ledger.refunds(entries["k1"].id)] == [3]
    report = await ledger.audit.verify()
    assert (report.ok, report.records, report.first_bad_seq, report.head_seq) == (True, 6, None, 6)
    assert (report.chains, report.entries) == (1, 2)
    assert report.head_hash == records[-1].hash == (await ledger.audit.head())[1]
    assert await ledger.audit.heads() == {"b": (6, records[-1].hash)}


async def test_edit_is_detected(ledger: LedgerBase) -> None:
    await _history(ledger)
    await raw(ledger, "UPDATE audit SET payload = replace(payload, '\"declined\"', '\"ok\"') WHERE seq = 5")
    report = await ledger.audit.verify()
    assert (report.ok, report.first_bad_seq, report.records) == (False, 5, 4)
    assert "edited" in report.problem


async def test_edited_kind_is_detected(ledger: LedgerBase) -> None:
    await _history(ledger)
    await raw(ledger, "UPDATE audit SET kind = 'release' WHERE seq = 2")
    report = await ledger.audit.verify()
    assert (report.ok, report.first_bad_seq) == (False, 2)


async def test_reorder_is_detected(ledger: LedgerBase) -> None:
    await _history(ledger)
    await raw(ledger, "UPDATE audit SET n = 100 WHERE seq = 2")
    await raw(ledger, "UPDATE audit SET n = 2 WHERE seq = 3")
    await raw(ledger, "UPDATE audit SET n = 3 WHERE seq = 2")
    report = await ledger.audit.verify()
    assert (report.ok, report.first_bad_seq) == (False, 3)  # now second in the chain, it links to record 2
    assert "does not link" in report.problem


async def test_renumbered_seq_is_detected(ledger: LedgerBase) -> None:
    await _history(ledger)
    await raw(ledger, "UPDATE audit SET seq = 100 WHERE seq = 2")
    await raw(ledger, "UPDATE audit SET seq = 2 WHERE seq = 3")
    await raw(ledger, "UPDATE audit SET seq = 3 WHERE seq = 100")
    report = await ledger.audit.verify()
    assert (report.ok, report.first_bad_seq) == (False, 3)  # the seq is hashed
    assert "edited" in report.problem


async def test_deleted_record_is_detected(ledger: LedgerBase) -> None:
    await _history(ledger)
    await raw(ledger, "DELETE FROM audit WHERE seq = 3")
    report = await ledger.audit.verify()
    assert (report.ok, report.first_bad_seq) == (False, 4)
    assert "record 3 of budget 'b'" in report.problem and "missing" in report.problem
    # Renumbering the chain to hide the gap breaks the link instead.
    for n in (4, 5, 6):
        await raw(ledger, "UPDATE audit SET n = ? WHERE n = ?", n - 1, n)
    report = await ledger.audit.verify()
    assert (report.ok, report.first_bad_seq) == (False, 4)
    assert "does not link" in report.problem


async def test_truncated_tail_is_detected(ledger: LedgerBase) -> None:
    await _history(ledger)
    await raw(ledger, "DELETE FROM audit WHERE seq >= 5")
    report = await ledger.audit.verify()
    assert (report.ok, report.records, report.first_bad_seq) == (False, 4, 6)  # the head names record 6
    assert "truncated" in report.problem


async def test_record_added_behind_the_ledgers_back_is_detected(ledger: LedgerBase) -> None:
    await _history(ledger)
    last = (await ledger.audit.records())[-1]
    forged = record_hash(last.hash, 7, last.ts, "commit", "b", {})
    await raw(ledger, "INSERT INTO audit (seq, ts, kind, budget_id, payload, prev_hash, hash) "
                      "VALUES (7, ?, 'commit', 'b', '{}', ?, ?)", last.ts, last.hash, forged)
    report = await ledger.audit.verify()
    assert (report.ok, report.first_bad_seq) == (False, 7)
    assert "outside the ledger" in report.problem


async def test_record_added_to_a_chain_without_its_head_is_detected(ledger: LedgerBase) -> None:
    await _history(ledger)
    last = (await ledger.audit.records())[-1]
    forged = record_hash(last.hash, 7, last.ts, "commit", "b", {}, 7)
    await raw(ledger, "INSERT INTO audit (seq, n, ts, kind, budget_id, payload, prev_hash, hash) "
                      "VALUES (7, 7, ?, 'commit', 'b', '{}', ?, ?)", last.ts, last.hash, forged)
    report = await ledger.audit.verify()
    assert (report.ok, report.first_bad_seq) == (False, 7)
    assert "past its head" in report.problem


async def test_export_jsonl_rechecks_offline(ledger: LedgerBase, tmp_path: Path) -> None:
    await _history(ledger)
    path = tmp_path / "audit.jsonl"
    assert await ledger.audit.export_jsonl(path) == 6
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    prev = GENESIS
    for n, rec in enumerate(lines, start=1):
        assert rec["prev_hash"] == prev and rec["n"] == n
        assert record_hash(prev, rec["seq"], rec["ts"], rec["kind"], rec["budget_id"], rec["payload"],
                           rec["n"]) == rec["hash"]
        prev = rec["hash"]
    assert prev == (await ledger.audit.head())[1] == (await ledger.audit.heads())["b"][1]
    assert "t0p" not in path.read_text(encoding="utf-8") and "eyJ" not in path.read_text(encoding="utf-8")
    stream = io.StringIO()
    assert ledger.audit.export_jsonl_sync(stream) == 6
    assert stream.getvalue() == path.read_text(encoding="utf-8")


async def test_refused_reserve_leaves_no_audit_record(ledger: LedgerBase) -> None:
    from amp_tools.errors import PolicyViolation

    with pytest.raises(PolicyViolation):
        await ledger.reserve(intent("200.00"), policy(), budget_id="b", idempotency_key="k", run_id="r")
    assert await ledger.audit.records() == []
    assert (await ledger.audit.verify()).ok
