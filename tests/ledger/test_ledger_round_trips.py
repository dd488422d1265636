"""PostgreSQL waits: a reserve, a lifecycle transition and a commit are one statement each, its own
transaction (one round trip, its commit included).

Counted at the client: the statements sent, the transactions opened (BEGIN ... COMMIT) and every time a
pipeline is synced (the client sends what it holds and waits for the answers). The budget row lock of
each write is taken and released inside its one statement (the server's `amp_reserve`, `amp_transition`,
`amp_commit`), so no round trip is made while it is held. The writes land exactly as before (amounts,
states, audit chain).
"""

from __future__ import annotations

from typing import Any

import pytest

from amp_tools.clock import ManualClock
from amp_tools.ledger import _ops
from tests.ledger._ledger_helpers import intent, open_backend, policy, require_pg, usd

pytestmark = pytest.mark.postgres


def test_reserve_transition_and_commit_are_one_statement_each(tmp_path: Any,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
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
        sent: list[str] = []
        real_sync, real_execute, real_transaction = (psycopg.Pipeline.sync, psycopg.Connection.execute,
                                                     psycopg.Connection.transaction)

        def counting_sync(self: Any) -> None:
            syncs.append("sync")
            real_sync(self)

        def counting_execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            sent.append(str(query))
            return real_execute(self, query, *args, **kwargs)

        def counting_transaction(self: Any, *args: Any, **kwargs: Any) -> Any:
            sent.append("BEGIN")
            return real_transaction(self, *args, **kwargs)

        monkeypatch.setattr(psycopg.Pipeline, "sync", counting_sync)
        monkeypatch.setattr(psycopg.Connection, "execute", counting_execute)
        monkeypatch.setattr(psycopg.Connection, "transaction", counting_transaction)
        res = ledger.reserve_sync(intent("10.00"), pol, budget_id="b", idempotency_key="k", flush=False)
        reserve_waits, reserve_sent = len(syncs), list(sent)
        monkeypatch.setattr(psycopg.Connection, "execute", real_execute)
        monkeypatch.setattr(psycopg.Connection, "transaction", real_transaction)
        assert res.entry == ledger.get_sync(res.id)  # what reserve hands back is exactly the row it wrote
        syncs[:], sent[:] = [], []
        monkeypatch.setattr(psycopg.Connection, "execute", counting_execute)
        monkeypatch.setattr(psycopg.Connection, "transaction", counting_transaction)
        at = ledger.clock.now()
        moved = ledger.run_write_sync(lambda: _ops.transition_steps(
            ledger.dialect, res.id, allowed_from=("reserved",), to_phase="sending", owner="o", lease_until=None,
            resume=None, keep_resume=True, reason="sending", now=at))
        transition_waits, transition_sent, syncs[:], sent[:] = len(syncs), list(sent), [], []
        committed = ledger.commit_sync(res.id, external_ref="tx-1", outcome={"legs": {"n": 1}, "token": "t"})
        commit_waits, commit_sent = len(syncs), list(sent)
        monkeypatch.undo()
        assert moved.phase == "sending" and moved.owner == "o"
        assert committed == ledger.get_sync(res.id)  # built from the values written, not read back
        assert committed.outcome == {"legs": {"n": 1}, "token": "[redacted]"}

        # Each write: one statement, no BEGIN/COMMIT around it, nothing pipelined.
        for sent_by, function in ((reserve_sent, "amp_reserve"), (transition_sent, "amp_transition"),
                                  (commit_sent, "amp_commit")):
            assert len(sent_by) == 1 and sent_by[0].startswith(f"SELECT {function}("), sent_by
        assert (reserve_waits, transition_waits, commit_waits) == (0, 0, 0)
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
