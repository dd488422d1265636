"""Schema version 3 (the payment lifecycle) on a database written by the version before it.

Open reservations of an earlier version have no owner: they become `sending` (possibly sent), so
recovery asks the merchant before freeing anything. Committed duplicates of one merchant
transaction (what the run-id key allowed) are marked `dup_of` the first, not changed, and from then
on a merchant transaction id can be committed only once.
"""

from __future__ import annotations

import pytest

from amp_tools.clock import ManualClock
from amp_tools.ledger import AlreadyCommitted
from amp_tools.ledger.schema import SCHEMA_VERSION
from amp_tools.payments import PaymentState, state_of
from tests.ledger._ledger_helpers import downgrade_to_v2, intent, open_backend, policy, raw_sync


def test_v2_database_is_migrated_keeping_money_records(backend: str, target: str, clock: ManualClock) -> None:
    pol = policy()
    ledger = open_backend(backend, target, clock)
    try:
        ids = []
        for n, key in enumerate(("k-a", "k-b", "k-open")):
            res = ledger.reserve_sync(intent("5.00", checkout="co-1" if n < 2 else "co-2"), pol, budget_id="b",
                                      idempotency_key=key, run_id=f"run-{n}")
            ids.append(res.id)
        ledger.commit_sync(ids[0], external_ref="TX-1")
        downgrade_to_v2(ledger)
        # What version 2 allowed: the same charge committed twice under two run ids.
        raw_sync(ledger, "UPDATE entries SET status = 'committed', external_ref = 'TX-1' WHERE id = ?", ids[1])
    finally:
        ledger.close_sync()

    again = open_backend(backend, target, clock)
    try:
        assert raw_sync(again, "SELECT MAX(version) FROM schema_version")[0][0] == SCHEMA_VERSION
        first, dup, still_open = (again.get_sync(i) for i in ids)
        assert (first.status, first.dup_of, first.external_ref) == ("committed", None, "TX-1")
        assert (dup.status, dup.dup_of, dup.external_ref) == ("committed", ids[0], "TX-1")  # marked, not changed
        assert state_of(still_open) == PaymentState.SENDING and still_open.owner is None
        assert still_open.reserved == still_open.budget_amount
        with pytest.raises(AlreadyCommitted):
            again.commit_sync(ids[2], external_ref="TX-1")
        assert again.get_sync(ids[2]).status == "reserved"
        assert again.audit.verify_sync(cross_check=False).ok
        # The duplicate was committed behind the audit's back (as version 2 let happen): the cross-check says so.
        report = again.audit.verify_sync()
        assert (report.ok, report.entry_id) == (False, ids[1]) and "status is 'committed'" in report.problem
    finally:
        again.close_sync()
