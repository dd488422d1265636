"""PostgreSQL waits: a reserve and a commit are one statement each, its own transaction (one round trip, its
commit included); a transition waits on one answer before its COMMIT.

Counted at the client: the statements sent, the transactions opened (BEGIN ... COMMIT) and every time the
pipeline is synced (the client sends what it holds and waits for the answers) inside one. A reserve's
budget row lock is taken and released inside its one statement (the server's `amp_reserve`), so no round
trip is made while it is held. The writes of each transaction land exactly as before (amounts, states,
audit chain).
"""

from __future__ import annotations

from typing import Any

import pytest
from _ledger_helpers import intent, open_backend, policy, require_pg, usd

from amp_tools.clock import ManualClock
from amp_tools.ledger import _ops

pytestmark = pytest.mark.postgres


def test_reserve_and_commit_are_one_statement_transition_waits_once(tmp_path: Any,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    require_pg()
    import psycopg
    from _ledger_helpers import drop_schema, new_schema

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
        transition_waits, transition_begun, syncs[:], sent[:] = len(syncs), sent.count("BEGIN"), [], []
        committed = ledger.commit_sync(res.id, external_ref="tx-1", outcome={"legs": {"n": 1}, "token": "t"})
        commit_waits, commit_sent = len(syncs), list(sent)
        monkeypatch.undo()
        assert moved.phase == "sending" and moved.owner == "o"
        assert committed == ledger.get_sync(res.id)  # built from the values written, not read back
        assert committed.outcome == {"legs": {"n": 1}, "token": "[redacted]"}

        # The reserve and the commit: one statement each, no BEGIN/COMMIT around it, nothing pipelined; the
        # transition: one transaction waiting once before its COMMIT.
        assert len(reserve_sent) == 1 and reserve_sent[0].startswith("SELECT amp_reserve("), reserve_sent
        assert len(commit_sent) == 1 and commit_sent[0].startswith("SELECT amp_commit("), commit_sent
        assert (reserve_waits, transition_waits, transition_begun, commit_waits) == (0, 1, 1, 0)
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
