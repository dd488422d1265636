"""PostgreSQL waits: a reserve waits on one answer before its COMMIT, a transition and a commit on two.

Counted at the client: every time the pipeline is synced (the client sends what it holds and waits for
the answers) inside the transaction. The budget row is locked by the first batch and released by the
COMMIT, so these are the round trips the shared budget's lock is held across. The writes of each
transaction land exactly as before (amounts, states, audit chain).
"""

from __future__ import annotations

from typing import Any

import pytest

from amp_tools.clock import ManualClock
from amp_tools.ledger import _ops
from tests.ledger._ledger_helpers import intent, open_backend, policy, require_pg, usd

pytestmark = pytest.mark.postgres


def test_reserve_waits_once_transition_and_commit_twice(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    require_pg()
    import psycopg

    from tests.ledger._ledger_helpers import drop_schema, new_schema

    schema = new_schema()
    ledger = open_backend("postgresql", schema, ManualClock(intent().at))
    try:
        pol = policy(windows={"day": {"limit": "50.00"}}, merchants={"caps": {"shop-1": "40.00"}},
                     velocity={"max_payments": 10, "per": "1h"})
        ledger.reserve_sync(intent("1.00", checkout="warm"), pol, budget_id="b", idempotency_key="warm")
        syncs: list[str] = []
        real_sync = psycopg.Pipeline.sync

        def counting_sync(self: Any) -> None:
            syncs.append("sync")
            real_sync(self)

        monkeypatch.setattr(psycopg.Pipeline, "sync", counting_sync)
        res = ledger.reserve_sync(intent("10.00"), pol, budget_id="b", idempotency_key="k", flush=False)
        reserve_waits = len(syncs)
        assert res.entry == ledger.get_sync(res.id)  # what reserve hands back is exactly the row it wrote
        syncs[:] = []
        at = ledger.clock.now()
        ledger.run_write_sync(lambda: _ops.transition_steps(
            ledger.dialect, res.id, allowed_from=("reserved",), to_phase="sending", owner="o", lease_until=None,
            resume=None, keep_resume=True, reason="sending", now=at))
        transition_waits, syncs[:] = len(syncs), []
        ledger.commit_sync(res.id, external_ref="tx-1")
        commit_waits = len(syncs)
        monkeypatch.undo()

        assert (reserve_waits, transition_waits, commit_waits) == (1, 2, 2)
        entry = ledger.get_sync(res.id)
        assert (entry.status, entry.budget_amount, entry.external_ref) == ("committed", usd("10.00"), "tx-1")
        report = ledger.usage_report_sync(pol, "b")
        assert report["total"]["used"]["amount"] == "11.00" and report["total"]["count"] == 2
        assert report["windows"]["day"]["used"]["amount"] == "11.00"
        assert report["merchants"]["shop-1"]["used"]["amount"] == "11.00"
        assert ledger.audit.verify_sync().ok
    finally:
        ledger.close_sync()
        drop_schema(schema)
