"""`audit verify` covers every row that changes what is enforced: an attacker with write access to
the database edits usage buckets, per-merchant totals, approvals, the freeze flag or the audit trail
itself, and verify names the row. Each tamper runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from amp_tools.approvals import ApprovalStore
from amp_tools.approvals.request import make_request
from amp_tools.ledger import LedgerBase
from amp_tools.ledger.controls import freeze_steps
from amp_tools.owner import OwnerKey
from amp_tools.owner.decisions import freeze_signed_steps, sign_policy_steps
from amp_tools.owner.enforce import signature_check
from amp_tools.policy import BudgetPolicy, Verdict
from tests.ledger._ledger_helpers import START, intent, policy, raw_sync, usd

OWNER = OwnerKey.generate()


def _scenario(ledger: LedgerBase) -> dict[str, Any]:
    """Payments at two merchants (one committed, one refunded in part, one released, one at a
    sub-budget), a freeze, one pending and one denied approval: the rows the guard reads."""
    pol, ids = policy(), {}
    ledger.create_budget_sync("team", pol, by="owner")
    for n, (amount, merchant, mcc) in enumerate((("30.00", "shop-1", "5812"), ("45.50", "shop-1", "5812"),
                                                 ("12.00", "shop-2", "5411"), ("7.00", "shop-2", None))):
        res = ledger.reserve_sync(intent(amount, merchant=merchant, mcc=mcc, checkout=f"c{n}",
                                         at=START + timedelta(hours=n)), pol, budget_id="team",
                                  idempotency_key=f"k{n}", run_id="r")
        ids[f"k{n}"] = res.id
        ledger.clock.advance(hours=1)  # type: ignore[attr-defined]  # each payment in its own hour bucket
    ledger.commit_sync(ids["k0"], external_ref="pay-0", outcome={})
    ledger.commit_sync(ids["k1"], external_ref="pay-1", outcome={})
    ledger.refund_sync(ids["k1"], usd("5.50"), external_ref="rf-1")
    ledger.release_sync(ids["k3"], reason="declined")
    at = ledger.clock.now()
    ledger.run_write_sync(lambda: freeze_steps(ledger.dialect, "team", True, by="owner", reason="trip over", now=at))
    store = ApprovalStore(ledger, budget_id="team")
    verdict = Verdict(approval_reasons=("above 20.00",), budget_left=usd("10.00"), checked_rules=("x",))
    pending = store.create(make_request(replace(intent("25.00", checkout="c9"), items=()), verdict, budget_id="team",
                                        ttl=timedelta(hours=1), clock=ledger.clock))
    denied = store.create(make_request(replace(intent("26.00", checkout="c8"), items=()), verdict, budget_id="team",
                                       ttl=timedelta(hours=1), clock=ledger.clock))
    store.deny(denied.id, "owner", "no")
    report = ledger.audit.verify_sync()
    assert report.ok, report.problem
    return {"ids": ids, "pending": pending.id, "denied": denied.id}


def _tamper_and_verify(ledger: LedgerBase, *statements: tuple[str, tuple[Any, ...]]) -> str:
    for sql, params in statements:
        raw_sync(ledger, sql, *params)
    report = ledger.audit.verify_sync()
    assert not report.ok
    return report.problem


def test_zeroed_usage_buckets_are_named(ledger: LedgerBase) -> None:
    _scenario(ledger)
    problem = _tamper_and_verify(ledger, ("UPDATE usage_buckets SET used_minor = 0, used_count = 0", ()))
    # The first bucket in order: budget team, scope all, the hour of the first payment (30.00).
    when = START.strftime("%Y-%m-%dT%H:%MZ")
    assert problem.startswith(f"usage bucket of budget 'team' for all payments, hour from {when}, holds 0 minor "
                              "units in 0 payments, but its entries sum to 3000 in 1")


def test_one_zeroed_hour_bucket_is_named_with_its_window(ledger: LedgerBase) -> None:
    _scenario(ledger)
    hour = int(START.timestamp()) * 1_000_000 + 3_600_000_000  # the second payment's hour (45.50 - 5.50)
    assert START.minute == 0 and START.second == 0
    problem = _tamper_and_verify(ledger, ("UPDATE usage_buckets SET used_minor = 0 WHERE scope = 'merchant' AND "
                                          "start = ? AND width = 3600000000", (hour,)))
    when = (START + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%MZ")
    assert f"usage bucket of budget 'team' for merchant 'shop-1', hour from {when}, holds 0 minor units in 1 " \
           "payments, but its entries sum to 4000 in 1" in problem


def test_zeroed_per_merchant_totals_are_named(ledger: LedgerBase) -> None:
    _scenario(ledger)
    problem = _tamper_and_verify(ledger, ("UPDATE usage_totals SET used_minor = 0, used_count = 0, "
                                          "committed_count = 0 WHERE scope = 'merchant'", ()))
    assert ("usage total of budget 'team' for merchant 'shop-1' holds used 0 minor units, 0 counting and 0 "
            "committed payments, but its entries sum to 7000, 2 and 2") in problem


def test_zeroed_per_mcc_total_is_named(ledger: LedgerBase) -> None:
    _scenario(ledger)
    problem = _tamper_and_verify(ledger, ("UPDATE usage_totals SET used_minor = 1 WHERE scope = 'mcc' "
                                          "AND key = '5411'", ()))
    assert "usage total of budget 'team' for mcc '5411' holds used 1 minor units" in problem
    assert "entries sum to 1200, 1 and 0" in problem


def test_forged_approval_pending_to_approved_is_named(ledger: LedgerBase) -> None:
    facts = _scenario(ledger)
    problem = _tamper_and_verify(ledger, ("UPDATE approval_requests SET status = 'approved', approved = 1, "
                                          "decided_by = 'owner', decided_us = 1 WHERE id = ?", (facts["pending"],)))
    assert f"approval {facts['pending']!r} of budget 'team' is 'approved' but its audit records say 'pending'" \
           in problem


def test_deleted_denial_and_invented_approval_are_named(ledger: LedgerBase) -> None:
    facts = _scenario(ledger)
    problem = _tamper_and_verify(ledger, ("DELETE FROM approval_requests WHERE id = ?", (facts["denied"],)))
    assert f"approval {facts['denied']!r} of budget 'team' (denied) has audit records but its row is missing" \
           in problem
    raw_sync(ledger, "INSERT INTO approval_requests (id, budget_id, binding, status, approved, request, created_us, "
                     "expires_us, reason) SELECT 'apr_forged', budget_id, 'b', 'approved', 1, request, created_us, "
                     "expires_us, '' FROM approval_requests WHERE id = ?", facts["pending"])
    report = ledger.audit.verify_sync()
    assert not report.ok and "approval 'apr_forged' (budget 'team', status 'approved') has no audit record" \
        in report.problem


def test_cleared_freeze_flag_is_named(ledger: LedgerBase) -> None:
    _scenario(ledger)
    problem = _tamper_and_verify(ledger, ("UPDATE budget_controls SET frozen = 0", ()))
    assert ("the control row of budget 'team' says frozen=False (reason 'trip over', by 'owner') but its last "
            "audit record") in problem
    assert "says frozen=True" in problem


def test_deleted_freeze_row_is_named(ledger: LedgerBase) -> None:
    _scenario(ledger)
    problem = _tamper_and_verify(ledger, ("DELETE FROM budget_controls", ()))
    assert "budget 'team' was frozen (audit seq" in problem and "control row is missing" in problem


def test_deleted_audit_record_is_named(ledger: LedgerBase) -> None:
    _scenario(ledger)
    seq = raw_sync(ledger, "SELECT seq FROM audit WHERE budget_id = 'team' AND n = 3")[0][0]
    problem = _tamper_and_verify(ledger, ("DELETE FROM audit WHERE seq = ?", (seq,)))
    assert "record 3 of budget 'team''s chain is missing" in problem and "deleted" in problem


def test_reordered_audit_records_are_named(ledger: LedgerBase) -> None:
    _scenario(ledger)
    # Swap the chain positions of records 2 and 3 (through a free position: the index keeps them unique).
    problem = _tamper_and_verify(
        ledger, ("UPDATE audit SET n = 1000 WHERE budget_id = 'team' AND n = 2", ()),
        ("UPDATE audit SET n = 2 WHERE budget_id = 'team' AND n = 3", ()),
        ("UPDATE audit SET n = 3 WHERE budget_id = 'team' AND n = 1000", ()))
    assert "of budget 'team''s chain" in problem
    assert "reordered" in problem or "does not match its hash" in problem


def test_edited_entry_amount_is_named(ledger: LedgerBase) -> None:
    facts = _scenario(ledger)
    entry = facts["ids"]["k2"]
    problem = _tamper_and_verify(ledger, ("UPDATE entries SET amount_minor = 1 WHERE id = ?", (entry,)))
    assert f"ledger entry {entry}: amount_minor is 1 but its audit records say 1200" in problem


@pytest.mark.parametrize("column", ["counted_minor", "budget_minor"])
def test_edited_counting_figures_are_named(ledger: LedgerBase, column: str) -> None:
    facts = _scenario(ledger)
    entry = facts["ids"]["k0"]
    problem = _tamper_and_verify(ledger, (f"UPDATE entries SET {column} = 1 WHERE id = ?", (entry,)))
    assert f"ledger entry {entry}: {column} is 1" in problem


def _loose() -> BudgetPolicy:
    return policy(total_budget="100000.00")


def test_policy_loosened_in_its_stored_version_is_named(ledger: LedgerBase) -> None:
    _scenario(ledger)
    problem = _tamper_and_verify(ledger, ("UPDATE budget_policies SET policy = ? WHERE budget_id = 'team'",
                                          (_loose().canonical_json(),)))
    assert "policy version 1 of budget 'team': its policy text does not hash to its audited policy_hash" in problem


def test_policy_loosened_with_its_hash_is_named(ledger: LedgerBase) -> None:
    _scenario(ledger)
    loose = _loose()
    problem = _tamper_and_verify(ledger, ("UPDATE budget_policies SET policy = ?, policy_hash = ? WHERE budget_id = "
                                          "'team'", (loose.canonical_json(), loose.snapshot_hash())))
    assert f"policy version 1 of budget 'team' has policy_hash {loose.snapshot_hash()[:12]}... but its audit " \
           "record" in problem


def test_rolled_back_or_deleted_policy_version_is_named(ledger: LedgerBase) -> None:
    _scenario(ledger)
    ledger.set_policy_sync("team", policy(total_budget="50.00"), by="owner", expected_version=1)
    problem = _tamper_and_verify(ledger, ("UPDATE budgets SET policy_version = 1 WHERE budget_id = 'team'", ()))
    assert "budget 'team' is set to policy version 1 but its newest audited version is 2: rolled back" in problem
    raw_sync(ledger, "DELETE FROM budget_policies WHERE version = 2")
    report = ledger.audit.verify_sync()
    assert "policy version 2 of budget 'team' has an audit record" in report.problem and "deleted" in report.problem


def test_with_the_owner_key_unsigned_or_forged_authority_is_named(ledger: LedgerBase) -> None:
    facts = _scenario(ledger)
    check = signature_check(OWNER.public())
    report = ledger.audit.verify_sync(signatures=check)
    assert not report.ok and f"policy version 1 of budget 'team' (in force) is not signed by the owner key " \
        f"{OWNER.kid}" in report.problem
    now = ledger.clock.now()
    ledger.run_write_sync(lambda: sign_policy_steps(ledger.dialect, OWNER, "team", None, now=now))
    ledger.run_write_sync(lambda: freeze_signed_steps(ledger.dialect, OWNER, "team", False, by="owner", reason="",
                                                      now=now))
    assert ledger.audit.verify_sync(signatures=check).ok  # signed by the owner: holds
    # A grant the owner signed for another approval, copied onto a pending one flipped to approved.
    owner_inbox = ApprovalStore(ledger, budget_id="team", owner_signer=OWNER)
    verdict = Verdict(approval_reasons=("above 20.00",), budget_left=usd("10.00"), checked_rules=("x",))
    other = owner_inbox.create(make_request(replace(intent("27.00", checkout="c7"), items=()), verdict,
                                            budget_id="team", ttl=timedelta(hours=1), clock=ledger.clock))
    owner_inbox.approve(other.id, "owner")
    assert ledger.audit.verify_sync(signatures=check).ok
    genuine = raw_sync(ledger, "SELECT signature FROM approval_signatures WHERE approval_id = ?", other.id)[0][0]
    raw_sync(ledger, "INSERT INTO approval_signatures (approval_id, decision, signature, signed_at) "
                     "VALUES (?, 'approve', ?, 0)", facts["pending"], genuine)
    raw_sync(ledger, "UPDATE approval_requests SET status = 'approved' WHERE id = ?", facts["pending"])
    # Without the key the state edit is named; with it, so is the signature (it is checked per row).
    assert f"approval {facts['pending']!r} of budget 'team' is 'approved'" in ledger.audit.verify_sync().problem
    raw_sync(ledger, "UPDATE budget_controls SET reason = 'x'")
    report = ledger.audit.verify_sync(signatures=check)
    assert not report.ok and "the control row of budget 'team'" in report.problem


def test_with_the_owner_key_an_approval_made_without_it_is_named(ledger: LedgerBase) -> None:
    """The attacker runs the ledger's own code (no owner key): the rows and audit agree, the signature is missing."""
    facts = _scenario(ledger)
    now = ledger.clock.now()
    ledger.run_write_sync(lambda: sign_policy_steps(ledger.dialect, OWNER, "team", None, now=now))
    ledger.run_write_sync(lambda: freeze_signed_steps(ledger.dialect, OWNER, "team", False, by="owner", reason="",
                                                      now=now))
    ApprovalStore(ledger, budget_id="team").approve(facts["pending"], "owner")  # unsigned, but audited
    assert ledger.audit.verify_sync().ok
    report = ledger.audit.verify_sync(signatures=signature_check(OWNER.public()))
    assert not report.ok
    assert f"the grant of approval {facts['pending']!r} (budget 'team') is not signed by the owner key" \
        in report.problem
    # And an unfreeze made without the key.
    ledger.run_write_sync(lambda: freeze_signed_steps(ledger.dialect, OWNER, "team", True, by="owner", reason="r",
                                                      now=now))
    ledger.run_write_sync(lambda: freeze_signed_steps(ledger.dialect, None, "team", False, by="owner", reason="",
                                                      now=now))
    raw_sync(ledger, "DELETE FROM approval_signatures")
    report = ledger.audit.verify_sync(signatures=signature_check(OWNER.public()))
    assert "the unfreeze of budget 'team' is not signed by the owner key" in report.problem
