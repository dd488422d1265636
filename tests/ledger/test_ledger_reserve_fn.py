"""The PostgreSQL reserve as one call of the server's ``amp_reserve`` (schema version 10).

What it writes is what SQLite writes for the same payments (entries, audit payloads, totals), its audit
records verify with the Python verifier (the server hashes exactly what `audit` hashes), and the
cases it leaves to the general path, or to the policy's own `decide`, come out as before.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from amp_tools.clock import ManualClock
from amp_tools.errors import AmpToolsError, PolicyViolation
from amp_tools.ledger import LedgerBase, _commit_fn, _ops, _reserve_fn, open_ledger
from amp_tools.ledger._engine import default_engine
from amp_tools.ledger._sql import Q, Steps
from amp_tools.ledger.controls import freeze_steps
from amp_tools.ledger.records import InvalidTransition
from amp_tools.ledger.schema import FUNCTION_BODIES, SCHEMA_VERSION
from amp_tools.money import Money
from amp_tools.policy import BudgetPolicy
from amp_tools.policy.subbudgets import BudgetPath
from tests.ledger._ledger_helpers import (
    PG_URL,
    START,
    downgrade_to_v5,
    drop_schema,
    intent,
    new_schema,
    open_backend,
    policy,
    raw_sync,
    require_pg,
    usd,
)

pytestmark = pytest.mark.postgres
decide: Any = default_engine()  # the module `amp_tools.policy.decide`

CREW = BudgetPolicy.model_validate({
    "name": "crew", "currency": "USD", "total_budget": "100.00", "windows": {"day": {"limit": "90.00"}},
    "approval": {"confirm_new_merchants": True},
    "agents": {"booker": {"total_budget": "60.00", "merchants": {"caps": {"shop-1": "30.00"}},
                          "velocity": {"max_payments": 5, "per": "1h"}}}})


@pytest.fixture
def pg() -> Iterator[LedgerBase]:
    require_pg()
    schema = new_schema()
    ledger = open_backend("postgresql", schema, ManualClock(START))
    try:
        yield ledger
    finally:
        ledger.close_sync()
        drop_schema(schema)


def _payloads(ledger: LedgerBase) -> list[tuple[str, str, dict[str, Any]]]:
    rows = raw_sync(ledger, "SELECT kind, budget_id, payload FROM audit ORDER BY seq")
    out = []
    for kind, budget_id, text in rows:
        payload = json.loads(text)
        payload.pop("entry_id", None)  # ids are the engines' own
        out.append((str(kind), str(budget_id), payload))
    return out


def _same_rows_and_verified(pg: LedgerBase, lite: LedgerBase, entry_columns: str, budget_columns: str) -> None:
    """The function wrote what SQLite wrote (the entries' columns, every level's aggregates), and the
    PostgreSQL chain verifies with its three entries."""
    assert raw_sync(pg, f"SELECT {entry_columns} FROM entries ORDER BY id") == \
        raw_sync(lite, f"SELECT {entry_columns} FROM entries ORDER BY id")
    for query in (f"SELECT {budget_columns} FROM budgets", "SELECT * FROM usage_totals",
                  "SELECT * FROM usage_buckets"):
        assert sorted(raw_sync(pg, query)) == sorted(raw_sync(lite, query)), query
    report = pg.audit.verify_sync()
    assert report.ok and report.entries == 3, report


def _pay_crew(ledger: LedgerBase) -> None:
    path = BudgetPath.of(CREW, "crew", "booker")
    for n, (merchant, amount) in enumerate((("shop-1", "20.00"), ("shop-2", "15.00"), ("shop-1", "5.00"))):
        at = START.replace(minute=n)
        res = ledger.reserve_sync(intent(amount, merchant=merchant, checkout=f"c{n}", at=at), CREW,
                                  budget_id=path.budget_id, idempotency_key=f"k{n}", now=at, path=path)
        if n == 0:
            ledger.commit_sync(res.id, external_ref="tx-0")
    with pytest.raises(PolicyViolation) as refused:
        ledger.reserve_sync(intent("10.00", checkout="c9"), CREW, budget_id=path.budget_id, idempotency_key="k9",
                            now=START.replace(minute=9), path=path)
    assert refused.value.rule == "agents.booker.merchants.caps"
    assert "already spent" in refused.value.message


def test_a_crew_through_the_function_writes_what_sqlite_writes_and_verifies(pg: LedgerBase, tmp_path: Any) -> None:
    lite = open_backend("sqlite", str(tmp_path / "l.db"), ManualClock(START))
    try:
        _pay_crew(lite)
        _pay_crew(pg)
        assert _payloads(pg) == _payloads(lite)
        levels = [p for kind, _b, p in _payloads(pg) if kind == "reserve"]
        assert levels[1]["levels"]["crew"]["total_budget"] == {"minor": 2000, "count": 1}
        assert levels[1]["decision_detail"]["approval_reasons"] == [
            "this is the first payment to SHOP-2 (shop-2) under this policy"]
        _same_rows_and_verified(pg, lite, "budget_id, attempt, status, decision, parents, root_id, counted_minor, "
                                "audit_seq > 0", "budget_id, used_minor, used_count, committed_count, parent")
    finally:
        lite.close_sync()


def test_a_text_that_looks_like_a_slot_is_never_planned(pg: LedgerBase) -> None:
    """A slot marker is NUL, name, NUL: PostgreSQL text cannot even hold NUL, so no stored value can be
    taken for a slot; a payment carrying one is not planned (and PostgreSQL refuses its text either way)."""
    pol = policy()
    assert _reserve_fn._plan(decide, pol, intent("1.00"), "b", "k", "", START, None, None, None) is not None
    assert _reserve_fn._plan(decide, pol, intent("1.00", merchant="\0f0\0"), "b", "k", "", START, None, None,
                             None) is None
    assert _reserve_fn._plan(decide, pol, intent("1.00"), "b", "\0attempt\0", "", START, None, None, None) is None
    plain = pg.reserve_sync(intent("1.00", checkout="c2"), pol, budget_id="b", idempotency_key="k2")
    assert plain.entry.decision["budget_left"]["minor"] == 9_900


def test_a_decision_the_policy_does_not_give_is_released_and_reported(pg: LedgerBase) -> None:
    def off_by_one(pol: Any, it: Any, usage: Any) -> Any:  # a policy engine that drifted from the caps
        verdict = decide.decide(pol, it, usage)
        return decide.Verdict(verdict.approval_reasons, verdict.budget_left - usd("0.01"), verdict.checked_rules)

    engine = SimpleNamespace(**{name: getattr(decide, name) for name in dir(decide) if not name.startswith("__")})
    engine.decide = off_by_one
    ledger = open_ledger(PG_URL, clock=ManualClock(START), engine=engine,
                         schema=pg.schema)  # type: ignore[attr-defined]
    try:
        with pytest.raises(AmpToolsError) as caught:
            ledger.reserve_sync(intent("1.00"), policy(), budget_id="b", idempotency_key="k")
        assert caught.value.code == "LEDGER_INTERNAL"
        assert raw_sync(pg, "SELECT status, reason FROM entries") == [("released", "ledger_disagreement")]
        assert raw_sync(pg, "SELECT used_minor, used_count FROM budgets") == [(0, 0)]
        assert pg.audit.verify_sync().ok
    finally:
        ledger.close_sync()


def _call(arg: str, retried: bool) -> Steps[dict[str, Any]]:
    rows = yield Q("SELECT amp_reserve(?, ?, ?)", (arg, True, retried))
    answer: dict[str, Any] = json.loads(rows[0][0])
    return answer


def test_a_call_sent_again_after_a_cut_off_recognizes_its_own_reservation(pg: LedgerBase) -> None:
    pol, it = policy(), intent("2.00")
    built = _reserve_fn._plan(decide, pol, it, "b", "k", "run", START, "me", None, None)
    assert built is not None
    first = pg.run_write_sync(lambda: _call(built[0], False))
    again = pg.run_write_sync(lambda: _call(built[0], True))  # the first one did commit
    later = pg.run_write_sync(lambda: _call(built[0], False))  # an ordinary repeat is a replay
    assert (first["s"], again["s"], later["s"]) == ("ok", "mine", "existing")
    assert int(again["row"][0]) == first["id"]
    assert raw_sync(pg, "SELECT COUNT(*), MAX(attempt) FROM entries") == [(1, 1)]


def test_a_frozen_budget_never_paid_from_is_refused_and_not_created(pg: LedgerBase) -> None:
    pg.run_write_sync(lambda: freeze_steps(pg.dialect, "fresh", True, by="owner", reason="paused", now=START))
    with pytest.raises(PolicyViolation) as refused:
        pg.reserve_sync(intent("1.00"), policy(), budget_id="fresh", idempotency_key="k")
    assert refused.value.rule == "budget.frozen"
    assert raw_sync(pg, "SELECT COUNT(*) FROM budgets WHERE budget_id = 'fresh'") == [(0,)]


def test_a_replaced_function_is_refused_at_open_and_named(pg: LedgerBase) -> None:
    """Anyone who can write the database can replace ``amp_reserve`` with one that skips a cap: no process
    opens the ledger until the owner reinstalls it, as the refusal's hint says."""
    pg.reserve_sync(intent("1.00"), policy(), budget_id="b", idempotency_key="k0")
    body = FUNCTION_BODIES["amp_reserve"]
    raw_sync(pg, "CREATE OR REPLACE FUNCTION amp_reserve(arg text, durable boolean, retried boolean) RETURNS text "
                 "LANGUAGE plpgsql AS $fn$" + body.replace("BEGIN", "BEGIN -- no caps here", 1) + "$fn$")
    with pytest.raises(AmpToolsError) as refused:
        open_backend("postgresql", pg.schema or "", ManualClock(START))  # type: ignore[attr-defined]
    assert refused.value.code == "LEDGER_TAMPERED" and "amp_reserve" in refused.value.message
    assert "DELETE FROM schema_version WHERE version = 10" in (refused.value.hint or "")
    report = pg.audit.verify_sync()  # a process that opened before the change: verify names it
    assert not report.ok and "amp_reserve" in report.problem
    raw_sync(pg, "DELETE FROM schema_version WHERE version = 10")
    again = open_backend("postgresql", pg.schema or "", ManualClock(START))  # type: ignore[attr-defined]
    try:
        res = again.reserve_sync(intent("1.00", checkout="c1"), policy(), budget_id="b", idempotency_key="k1")
        assert res.entry.attempt == 1 and again.audit.verify_sync().ok
    finally:
        again.close_sync()


def test_a_schema_of_version_9_gets_the_function(pg: LedgerBase) -> None:
    pg.reserve_sync(intent("1.00"), policy(), budget_id="b", idempotency_key="k0")
    downgrade_to_v5(pg)
    assert raw_sync(pg, "SELECT COUNT(*) FROM pg_proc p JOIN pg_namespace s ON s.oid = p.pronamespace "
                        "WHERE p.proname = 'amp_reserve' AND s.nspname = current_schema()") == [(0,)]
    again = open_backend("postgresql", pg.schema or "", ManualClock(START))  # type: ignore[attr-defined]
    try:
        assert raw_sync(again, "SELECT MAX(version) FROM schema_version") == [(SCHEMA_VERSION,)]
        res = again.reserve_sync(intent("1.00", checkout="c1"), policy(), budget_id="b", idempotency_key="k1")
        assert res.entry.attempt == 1 and again.audit.verify_sync().ok
    finally:
        again.close_sync()


ODD = 'k "q" \\ back\nline \x01 é ☕'


def _move(ledger: LedgerBase, entry_id: int, to: str, *, owner: str = "w", resume: str | None = None,
          allowed: tuple[str, ...] = ("reserved",)) -> Any:
    result = ledger.run_write_sync(lambda: _ops.transition_steps(
        ledger.dialect, entry_id, allowed_from=allowed, to_phase=to, owner=owner, lease_until=START, resume=resume,
        keep_resume=resume is None, reason="test", now=START))
    if isinstance(result, InvalidTransition):  # a refusal comes back once its record is committed
        raise result
    return result


def _odd_payments(ledger: LedgerBase) -> None:
    pol = policy()
    budget = 'b "odd" \\ é'
    first = ledger.reserve_sync(intent("10.00", checkout="c1"), pol, budget_id=budget, idempotency_key=ODD)
    moved = _move(ledger, first.id, "sending", owner="w \" é", resume="sealed")
    assert moved == ledger.get_sync(first.id) and (moved.phase, moved.resume) == ("sending", "sealed")
    ledger.commit_sync(first.id, external_ref="tx-1", outcome={"note": ODD, "token": "secret"}, debited=usd("12.00"))
    second = ledger.reserve_sync(intent("10.00", checkout="c2"), pol, budget_id=budget, idempotency_key=ODD + "2")
    ledger.commit_sync(second.id, external_ref="tx-2", debited=usd("9.50"))
    third = ledger.reserve_sync(intent("1.00", checkout="c3"), pol, budget_id=budget, idempotency_key=ODD + "3")
    ledger.commit_sync(third.id, external_ref=None)
    ledger.commit_sync(third.id, external_ref="tx-3")  # committed already: handed back as it is


def test_commits_through_the_function_write_what_sqlite_writes_and_verify(pg: LedgerBase, tmp_path: Any) -> None:
    """Keys and budget ids with quotes, backslashes, control characters and non-ASCII text: the server's JSON
    of the locked entry's values is the canonical JSON Python writes, so the chain verifies."""
    lite = open_backend("sqlite", str(tmp_path / "l.db"), ManualClock(START))
    try:
        _odd_payments(lite)
        _odd_payments(pg)
        assert _payloads(pg) == _payloads(lite)
        kinds = [kind for kind, _b, _p in _payloads(pg)]
        assert kinds == ["reserve", "transition", "commit", "reserve", "commit", "reserve", "commit"]
        assert _payloads(pg)[1][2]["from"] == "reserved" and _payloads(pg)[1][2]["owner"] == 'w " é'
        over = _payloads(pg)[2][2]
        assert over["over_reservation"] == {"currency": "USD", "minor": 200} and over["idempotency_key"] == ODD
        assert over["outcome"] == {"note": ODD, "token": "[redacted]"}
        _same_rows_and_verified(pg, lite, "idempotency_key, status, budget_minor, reserved_minor, counted_minor, "
                                "external_ref, outcome", "budget_id, used_minor, used_count, committed_count")
    finally:
        lite.close_sync()


def test_a_commit_the_rules_refuse_changes_nothing(pg: LedgerBase) -> None:
    pol = policy()
    held = pg.reserve_sync(intent("1.00", checkout="c1"), pol, budget_id="b", idempotency_key="k1")
    paid = pg.reserve_sync(intent("1.00", checkout="c2"), pol, budget_id="b", idempotency_key="k2")
    pg.commit_sync(paid.id, external_ref="tx-1")
    before = raw_sync(pg, "SELECT COUNT(*) FROM audit")
    with pytest.raises(AmpToolsError) as taken:
        pg.commit_sync(held.id, external_ref="tx-1")  # another entry holds this merchant transaction
    assert taken.value.code == "ALREADY_PAID"
    with pytest.raises(AmpToolsError) as other:
        pg.commit_sync(paid.id, external_ref="tx-9")
    assert "already committed with external_ref 'tx-1'" in other.value.message
    with pytest.raises(AmpToolsError) as missing:
        pg.commit_sync(10_000, external_ref="tx-2")
    assert missing.value.code == "NOT_FOUND"
    with pytest.raises(AmpToolsError) as euro:
        pg.commit_sync(held.id, external_ref="tx-3", debited=Money(100, "EUR"))
    assert "must be positive and in the budget currency USD" in euro.value.message
    assert raw_sync(pg, "SELECT COUNT(*) FROM audit") == before  # refused by a rule: nothing written
    with pytest.raises(InvalidTransition):
        _move(pg, paid.id, "sending")  # committed: it moves no more
    with pytest.raises(InvalidTransition):
        _move(pg, held.id, "unknown", allowed=("sending",))
    # A move the transition table refuses changes nothing but leaves its refusal in the chain.
    refused = raw_sync(pg, "SELECT kind, payload FROM audit ORDER BY seq")[before[0][0]:]
    assert [(kind, json.loads(text)["to"]) for kind, text in refused] == [("move_refused", "sending"),
                                                                          ("move_refused", "unknown")]
    assert pg.get_sync(held.id).status == "reserved" and pg.get_sync(paid.id).status == "committed"
    assert pg.audit.verify_sync().ok


def test_a_move_sent_again_after_a_cut_off_recognizes_itself(pg: LedgerBase) -> None:
    res = pg.reserve_sync(intent("2.00"), policy(), budget_id="b", idempotency_key="k")
    steps = _commit_fn.transition_steps(res.id, allowed_from=("reserved",), to_phase="sending", owner="me",
                                        lease_until=None, resume=None, keep_resume=True, reason="go", now=START)
    query = next(steps)
    steps.close()
    assert query.alone and query.sql.startswith("SELECT amp_transition(")

    def call(retried: bool) -> Steps[str]:
        rows = yield Q(query.sql, (query.params[0], True, retried))
        return str(json.loads(rows[0][0])["s"])

    first = pg.run_write_sync(lambda: call(False))
    again = pg.run_write_sync(lambda: call(True))  # the first one did move it
    later = pg.run_write_sync(lambda: call(False))  # an ordinary repeat is refused
    assert (first, again, later) == ("ok", "ok", "row")
    assert raw_sync(pg, "SELECT COUNT(*) FROM audit WHERE kind = 'transition'") == [(1,)]


def test_a_reserve_inside_a_larger_transaction_runs_the_function_in_it(pg: LedgerBase) -> None:
    """Not the first statement of its transaction, the call is one statement of it: an allowed reservation
    commits with the rest, and a refusal that created the budget row (answered by raising) rolls it back."""
    pol = policy(total_budget="5.00")

    def wrapped(amount: str, budget: str, key: str) -> Steps[Any]:
        yield Q("SELECT 1")
        return (yield from pg._reserve(intent(amount, checkout=key), pol, budget, key, "", START)())

    made = pg.run_write_sync(lambda: wrapped("2.00", "inside", "k1"))
    assert made.entry == pg.get_sync(made.id)
    with pytest.raises(PolicyViolation) as refused:
        pg.run_write_sync(lambda: wrapped("9.00", "fresh", "k2"))
    assert refused.value.rule == "total_budget"
    assert raw_sync(pg, "SELECT budget_id FROM budgets ORDER BY 1") == [("inside",)]
    assert pg.audit.verify_sync().ok


def test_each_call_commits_with_the_durability_it_is_given(pg: LedgerBase, monkeypatch: pytest.MonkeyPatch) -> None:
    """A call run alone sets ``synchronous_commit`` for its own transaction (`states.DURABILITY`: a reservation
    skips the flush, a commit waits for it), and the backend hands each call its transaction's flush."""
    import psycopg

    default = str(raw_sync(pg, "SELECT current_setting('synchronous_commit')")[0][0])
    assert default != "off"
    for key, durable, expected in (("k1", False, "off"), ("k2", True, default)):
        built = _reserve_fn._plan(decide, policy(), intent("1.00", checkout=key), "b", key, "", START, None, None,
                                  None)
        assert built is not None
        rows = raw_sync(pg, "SELECT amp_reserve(?, ?, false), current_setting('synchronous_commit')", built[0],
                        durable)
        assert (json.loads(rows[0][0])["s"], rows[0][1]) == ("ok", expected)
    given: list[tuple[str, bool]] = []
    real = psycopg.Connection.execute

    def spy(self: Any, query: Any, params: Any = None, *args: Any, **kwargs: Any) -> Any:
        if str(query).startswith("SELECT amp_"):
            given.append((str(query).split("(")[0][7:], params[1]))
        return real(self, query, params, *args, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "execute", spy)
    res = pg.reserve_sync(intent("1.00", checkout="k3"), policy(), budget_id="b", idempotency_key="k3", flush=False)
    pg._run_write_sync(lambda: _ops.transition_steps(pg.dialect, res.id, allowed_from=("reserved",),
                                                     to_phase="awaiting_approval", owner="o", lease_until=None,
                                                     resume=None, keep_resume=True, reason="ask", now=START),
                       flush=False)
    pg.commit_sync(res.id, external_ref="tx-3")
    assert given == [("amp_reserve", False), ("amp_transition", False), ("amp_commit", True)]
