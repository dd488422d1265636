"""ApprovalStore: states, binding, single use, expiry, and a cross-process race."""

from __future__ import annotations

import multiprocessing
from datetime import timedelta
from pathlib import Path

import pytest
from approvals_helpers import T0, consume_worker, request

from amp_tools.approvals import ApprovalDecision, ApprovalStateError, ApprovalStore
from amp_tools.clock import ManualClock
from amp_tools.errors import ConfigError, InvalidArguments, NotFound
from amp_tools.ledger import open_ledger
from amp_tools.money import Money


@pytest.fixture
def store(tmp_path: Path) -> ApprovalStore:
    return ApprovalStore(open_ledger(tmp_path / "ledger.db"), clock=ManualClock(T0))


def test_lifecycle_approve_then_consume_once(store: ApprovalStore) -> None:
    req = request()
    store.create(req)
    assert [r.status for r in store.list("pending")] == ["pending"]
    assert store.consume(req.binding, T0) is None  # nothing decided yet
    record = store.approve(req.id, "alice", now=T0 + timedelta(minutes=1))
    assert (record.status, record.approved, record.decided_by) == ("approved", True, "alice")
    assert record.decided_at == T0 + timedelta(minutes=1)
    assert store.consume(req.binding, T0 + timedelta(minutes=2)) == ApprovalDecision(True, "", "alice")
    assert store.consume(req.binding, T0 + timedelta(minutes=2)) is None  # single use
    assert store.get(req.id).status == "consumed"
    assert store.list("pending") == [] and len(store.list()) == 1


def test_binding_mismatch_gets_no_grant(store: ApprovalStore) -> None:
    req = request()
    store.create(req)
    store.approve(req.id, "alice", now=T0)
    other = request(amount=Money.parse("181.00", "SGD"))
    assert store.consume(other.binding, T0) is None
    assert store.get(req.id).status == "approved"  # the real grant is untouched


def test_denial_stands_until_the_owner_reopens_it(store: ApprovalStore) -> None:
    req = request()
    store.create(req)
    store.deny(req.id, "bob", "too expensive", now=T0)
    # A model cannot keep asking: every consult for the same payment gets the original denial.
    assert store.consume(req.binding, T0) == ApprovalDecision(False, "too expensive", "bob")
    assert store.consume(req.binding, T0 + timedelta(days=3)) == ApprovalDecision(False, "too expensive", "bob")
    reopened = store.reopen(req.id, "bob", now=T0 + timedelta(days=3))
    assert reopened.status == "reopened"
    assert store.consume(req.binding, T0 + timedelta(days=3)) is None
    with pytest.raises(ApprovalStateError, match="only a denied request can be reopened"):
        store.reopen(req.id, "bob")


def test_expired_grant_is_not_consumed_and_expired_request_cannot_be_decided(store: ApprovalStore) -> None:
    granted = request(ttl=timedelta(minutes=5))
    store.create(granted)
    store.approve(granted.id, "alice", now=T0 + timedelta(minutes=4))
    assert store.consume(granted.binding, T0 + timedelta(minutes=5)) is None
    late = request(ttl=timedelta(minutes=5), checkout_id="other", merchant_id="ZOOM-CARS")
    store.create(late)
    with pytest.raises(ApprovalStateError, match=f"approval {late.id} expired at 2025-06-04T12:05:00"):
        store.approve(late.id, "alice", now=T0 + timedelta(minutes=5))
    expired = store.get(late.id)  # denied automatically, for good
    assert (expired.status, expired.approved, expired.decided_by) == ("expired", False, "expiry")


def test_deciding_twice_or_unknown_id_is_refused(store: ApprovalStore) -> None:
    req = request()
    store.create(req)
    store.approve(req.id, "alice", now=T0)
    with pytest.raises(ApprovalStateError, match="already approved"):
        store.deny(req.id, "bob", "no", now=T0)
    with pytest.raises(NotFound):
        store.approve("apr_missing", "alice")
    with pytest.raises(InvalidArguments, match="name of the person"):
        store.approve(req.id, " ")
    with pytest.raises(ApprovalStateError, match="already exists"):
        store.create(req)
    with pytest.raises(InvalidArguments, match="at most 500"):
        store.deny(req.id, "bob", "x" * 501)


def test_open_or_create_reuses_pending_until_expiry(store: ApprovalStore) -> None:
    first = request(ttl=timedelta(minutes=5))
    assert store.open_or_create(first, T0).request.id == first.id
    second = request(ttl=timedelta(minutes=5))
    assert store.open_or_create(second, T0 + timedelta(minutes=1)).request.id == first.id
    third = request(clock=ManualClock(T0 + timedelta(minutes=6)))
    assert store.open_or_create(third, T0 + timedelta(minutes=6)).request.id == third.id
    assert store.get(first.id).status == "expired"  # the same payment's stale question was expired first
    store.clock.advance(minutes=10)  # type: ignore[attr-defined]
    assert [r.id for r in store.list("expired")] == [first.id]
    assert store.get(first.id).status == "expired"
    assert [r.id for r in store.list("pending")] == [third.id]


def test_shared_file_and_sqlite_url(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    open_ledger(path).close_sync()  # the ledger's database exists; the stores open it, never a new one
    a = ApprovalStore(f"sqlite:///{path}")
    b = ApprovalStore(path)
    req = request()
    a.create(req)
    b.approve(req.id, "carol", now=T0)
    assert a.get(req.id).status == "approved"
    assert a.consume(req.binding, T0) is not None and b.consume(req.binding, T0) is None


def test_a_path_that_is_not_a_ledger_database_is_refused_creating_nothing(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMP_TOOLS_LEDGER_URL", str(tmp_path / "ledger.db"))
    with pytest.raises(ConfigError, match=r"ledger's own database only.*does not exist"):
        ApprovalStore(tmp_path / "approvals.db")
    assert not (tmp_path / "approvals.db").exists()
    (tmp_path / "notes.db").write_bytes(b"")
    with pytest.raises(ConfigError, match="is not a ledger database"):
        ApprovalStore(tmp_path / "notes.db")
    configured = ApprovalStore()  # the configured ledger (created if new: it is the ledger itself)
    assert (tmp_path / "ledger.db").is_file()
    configured.close()


async def test_async_wrappers(store: ApprovalStore) -> None:
    req = request()
    await store.acreate(req)
    await store.aapprove(req.id, "alice", now=T0)
    assert [r.request.id for r in await store.alist("approved")] == [req.id]
    assert (await store.aget(req.id)).approved is True
    assert (await store.aconsume(req.binding, T0)) == ApprovalDecision(True, "", "alice")
    assert await store.aconsume(req.binding, T0) is None


def test_cross_process_single_use(tmp_path: Path) -> None:
    path = str(tmp_path / "race.db")
    store = ApprovalStore(open_ledger(path))
    req = request()
    store.create(req)
    store.approve(req.id, "alice", now=T0)
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(6)  # every worker opens its store, then all race at once
    results = ctx.Queue()
    workers = [ctx.Process(target=consume_worker, args=(path, req.binding, start, results)) for _ in range(6)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert outcomes.count((True, "alice")) == 1
    assert outcomes.count(None) == 5
    assert store.get(req.id).status == "consumed"
