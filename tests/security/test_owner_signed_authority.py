"""An attacker with write access to the ledger (SQLite and PostgreSQL) and no owner key: loosens the
stored policy, forges or replays an approval, clears a freeze, zeroes the usage buckets. With the
owner's key pinned (`AmpToolkit(owner_key=...)`) none of it gets a payment sent: asserted against
the sandbox's own record of charges, not only the ledger."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from amp_tools.approvals import ApprovalStore, CallbackApprover, OutOfBandApprover
from amp_tools.errors import ApprovalPending, PolicyViolation, ToolError
from amp_tools.ledger import LedgerBase, open_ledger
from amp_tools.ledger._sql import Q, Steps
from amp_tools.owner import OwnerKey
from amp_tools.owner.decisions import freeze_signed_steps, sign_policy_steps
from amp_tools.policy import BudgetPolicy
from amp_tools.sandbox import Sandbox, SandboxConfig
from amp_tools.toolkit import AmpToolkit, WalletAction
from tests.ledger._ledger_helpers import PG_URL

POLICY = {"name": "team", "currency": "USD", "total_budget": "500.00", "windows": {"day": {"limit": "90.00"}},
          "approval": {"confirm_above": "50.00"}}
TOUR, ADAPTER = "SUNNY-TOURS:SUN-KL-CITY-TOUR", "SUNNY-TOURS:SUN-ADAPTER"  # 45.00 and 29.99 USD
OWNER = OwnerKey.generate()


def _raw(ledger: LedgerBase, sql: str, *params: Any) -> list[Any]:
    def steps() -> Steps[list[Any]]:
        rows = yield Q(sql, params)
        return rows

    return ledger.run_write_sync(steps)


def _open(target: str, sandbox: Sandbox) -> LedgerBase:
    """The `target` fixture's SQLite file, or its PostgreSQL schema (a name, not a path)."""
    if target.startswith("amp_test_"):
        return open_ledger(PG_URL, clock=sandbox.clock, schema=target)
    return open_ledger(target, clock=sandbox.clock)


def _budget_hash(ledger: LedgerBase, digest: str) -> None:
    """The attacker also rewrites the budget row's copy of the hash where the schema keeps one."""
    with contextlib.suppress(Exception):  # a schema without budgets.policy_hash: nothing more to rewrite
        _raw(ledger, "UPDATE budgets SET policy_hash = ? WHERE budget_id = 'team'", digest)


class World:
    """The owner's side (key, signed budget, inbox) and the agent's toolkit on one ledger and sandbox."""

    def __init__(self, target: str, *, pinned: bool = True, approver: Any = None,
                 policy: dict[str, Any] | None = None) -> None:
        self.sandbox = Sandbox(SandboxConfig(idv_mode="manual", seed=11))
        self.ledger = _open(target, self.sandbox)
        self.policy = BudgetPolicy.model_validate(policy or POLICY)
        self.ledger.create_budget_sync("team", self.policy, by="owner")
        self.sign_policy()
        self.owner_inbox = ApprovalStore(self.ledger, budget_id="team", owner_signer=OWNER)
        sandbox = self.sandbox

        async def wallet(action: WalletAction) -> None:
            sandbox.complete_idv(action.auth_session_id)

        self.toolkit = AmpToolkit.for_sandbox(
            self.sandbox, self.policy, ledger=self.ledger, budget_id="team", wallet_prompt=wallet,
            approver=approver or OutOfBandApprover(ApprovalStore(self.ledger, budget_id="team"),
                                                   clock=self.sandbox.clock),
            owner_key=OWNER.public_jwk() if pinned else None, run_id="attack")
        self.specs = {s.name: s for s in self.toolkit.specs()}

    def sign_policy(self) -> None:
        now = self.ledger.clock.now()
        self.ledger.run_write_sync(lambda: sign_policy_steps(self.ledger.dialect, OWNER, "team", None, now=now))

    def control(self, frozen: bool, *, key: OwnerKey | None = OWNER) -> None:
        now = self.ledger.clock.now()
        self.ledger.run_write_sync(lambda: freeze_signed_steps(self.ledger.dialect, key, "team", frozen, by="owner",
                                                               reason="trip over" if frozen else "", now=now))

    async def checkout(self, offer: str, quantity: int = 1) -> str:
        await self.specs["discover_merchants"].ainvoke({})
        await self.specs["search_offers"].ainvoke({"query": "*"})
        ck = await self.specs["checkout"].ainvoke({"offer_id": offer, "quantity": quantity})
        return str(ck["checkout_id"])

    async def pay(self, offer: str, quantity: int = 1, *, checkout_id: str | None = None) -> dict[str, Any]:
        ck = checkout_id or await self.checkout(offer, quantity)
        result: dict[str, Any] = await self.specs["pay"].ainvoke({"checkout_id": ck})
        return result

    def charges(self) -> list[str]:
        """The sandbox's record of what was actually charged (amounts as the network saw them)."""
        return sorted(json.dumps(p, sort_keys=True, default=str) for p in self.sandbox.payments())

    def refusals(self) -> list[str]:
        rows = _raw(self.ledger, "SELECT payload FROM audit WHERE kind = 'owner_authority_refused' ORDER BY seq")
        return [str(json.loads(row[0]).get("code")) for row in rows]


@pytest.fixture
def world(target: str, backend: str) -> Iterator[World]:
    w = World(target)
    assert (w.ledger.dialect.name == "postgresql") == (backend == "postgres")
    yield w
    w.ledger.close_sync()


async def test_signed_budget_pays_and_budget_status_says_signed(world: World) -> None:
    paid = await world.pay(TOUR)
    assert paid["status"] == "paid" and paid["amount"] == {"amount": "45.00", "currency": "USD"}
    assert len(world.sandbox.payments()) == 1
    status = await world.specs["budget_status"].ainvoke({})
    assert status["signed"] is True


async def test_zeroed_usage_buckets_do_not_loosen_the_day_cap(world: World) -> None:
    await world.pay(TOUR)
    await world.pay(TOUR)  # 90.00 of the 90.00 day cap
    charged = world.charges()
    assert len(charged) == 2
    with pytest.raises(PolicyViolation):
        await world.pay(ADAPTER)
    _raw(world.ledger, "UPDATE usage_buckets SET used_minor = 0, used_count = 0")
    with pytest.raises(ToolError) as refused:
        await world.pay(ADAPTER)  # without the check: 119.99 on a 90.00 day cap
    assert refused.value.code == "LEDGER_TAMPERED"
    assert "entries sum to 9000 in 2" in refused.value.message
    assert world.charges() == charged
    assert world.refusals() == ["LEDGER_TAMPERED"]
    report = world.ledger.audit.verify_sync()
    assert not report.ok and "usage bucket of budget 'team'" in report.problem


async def test_policy_loosened_in_the_database_is_never_spent_under(world: World) -> None:
    await world.pay(TOUR)
    loose = BudgetPolicy.model_validate(POLICY | {"windows": {"day": {"limit": "5000.00"}},
                                                  "total_budget": "9000.00"})
    # The attacker rewrites the version in force, its hash and the budget's copy of the hash.
    _raw(world.ledger, "UPDATE budget_policies SET policy = ?, policy_hash = ? WHERE budget_id = 'team'",
         loose.canonical_json(), loose.snapshot_hash())
    _budget_hash(world.ledger, loose.snapshot_hash())
    with pytest.raises(ToolError) as refused:
        await world.pay(TOUR)
    assert refused.value.code == "OWNER_SIGNATURE_INVALID"
    assert "amp-tools owner sign-policy team" in refused.value.hint
    # Only the text (the signed hash left in place): refused too.
    _raw(world.ledger, "UPDATE budget_policies SET policy_hash = ? WHERE budget_id = 'team'",
         world.policy.snapshot_hash())
    _budget_hash(world.ledger, world.policy.snapshot_hash())
    with pytest.raises(ToolError) as again:
        await world.pay(TOUR)
    assert again.value.code == "OWNER_SIGNATURE_INVALID" and "edited after the owner signed it" in again.value.message
    # A new unsigned version (an attacker's INSERT), made the one in force: unsigned, refused.
    _raw(world.ledger, "INSERT INTO budget_policies (budget_id, version, policy, policy_hash, created_at, created_by, "
                       "note, signature, diff) VALUES ('team', 2, ?, ?, 0, 'owner', '', NULL, NULL)",
         loose.canonical_json(), loose.snapshot_hash())
    _raw(world.ledger, "UPDATE budgets SET policy_version = 2 WHERE budget_id = 'team'")
    _budget_hash(world.ledger, loose.snapshot_hash())
    with pytest.raises(ToolError) as unsigned:
        await world.pay(TOUR)
    assert unsigned.value.code == "OWNER_SIGNATURE_MISSING"
    assert len(world.sandbox.payments()) == 1
    assert world.refusals() == ["OWNER_SIGNATURE_INVALID", "OWNER_SIGNATURE_INVALID", "OWNER_SIGNATURE_MISSING"]
    assert (await world.specs["budget_status"].ainvoke({}))["signed"] is False
    report = world.ledger.audit.verify_sync()
    assert not report.ok


async def test_forged_and_replayed_approvals_send_nothing(target: str) -> None:
    # A payment waiting for a person keeps its hold, so the day has room for both held payments here.
    world = World(target, policy=POLICY | {"windows": {"day": {"limit": "200.00"}}})
    try:
        await _forged_and_replayed(world)
    finally:
        world.ledger.close_sync()


async def _forged_and_replayed(world: World) -> None:
    tours = await world.checkout(TOUR, 2)  # 90.00 > confirm_above 50.00
    with pytest.raises(ApprovalPending) as pending:
        await world.pay(TOUR, checkout_id=tours)
    approval_id = pending.value.details["approval_id"]
    # Forged: the row flipped from pending to approved by a database write.
    _raw(world.ledger, "UPDATE approval_requests SET status = 'approved', approved = 1, decided_by = 'owner', "
                       "decided_us = 1 WHERE id = ?", approval_id)
    with pytest.raises(ToolError) as forged:
        await world.pay(TOUR, checkout_id=tours)
    assert forged.value.code == "OWNER_SIGNATURE_MISSING"
    assert world.sandbox.payments() == []
    # Replayed: a genuine owner signature over another approval (two adapters, 59.98) copied onto a new forgery.
    adapters = await world.checkout(ADAPTER, 2)
    with pytest.raises(ApprovalPending) as other:
        await world.pay(ADAPTER, checkout_id=adapters)
    world.owner_inbox.approve(other.value.details["approval_id"], by="owner")
    genuine = _raw(world.ledger, "SELECT signature FROM approval_signatures WHERE approval_id = ?",
                   other.value.details["approval_id"])[0][0]
    with pytest.raises(ApprovalPending) as third:
        await world.pay(TOUR, checkout_id=tours)
    forged_id = third.value.details["approval_id"]
    _raw(world.ledger, "UPDATE approval_requests SET status = 'approved', approved = 1 WHERE id = ?", forged_id)
    _raw(world.ledger, "INSERT INTO approval_signatures (approval_id, decision, signature, signed_at) "
                       "VALUES (?, 'approve', ?, 0)", forged_id, genuine)
    with pytest.raises(ToolError) as replayed:
        await world.pay(TOUR, checkout_id=tours)
    assert replayed.value.code == "OWNER_SIGNATURE_INVALID"
    assert world.sandbox.payments() == []
    # The genuine approval pays its own payment, once.
    paid = await world.pay(ADAPTER, checkout_id=adapters)
    assert paid["status"] == "paid" and paid["amount"] == {"amount": "59.98", "currency": "USD"}
    assert len(world.sandbox.payments()) == 1
    assert world.refusals() == ["OWNER_SIGNATURE_MISSING", "OWNER_SIGNATURE_INVALID"]


async def test_an_in_process_approval_is_not_the_owners_signed_one(target: str) -> None:
    w = World(target, approver=CallbackApprover(lambda r: True, name="someone-at-the-agent"))
    try:
        with pytest.raises(ToolError) as refused:
            await w.pay(TOUR, 2)
        assert refused.value.code == "OWNER_SIGNATURE_MISSING"
        assert w.sandbox.payments() == []
    finally:
        w.ledger.close_sync()


async def test_freeze_holds_unsigned_and_an_unfreeze_by_database_edit_sends_nothing(world: World) -> None:
    world.control(True)
    with pytest.raises(PolicyViolation) as frozen:
        await world.pay(TOUR)
    assert frozen.value.rule == "budget.frozen"
    _raw(world.ledger, "UPDATE budget_controls SET frozen = 0")  # cleared by the attacker
    with pytest.raises(ToolError) as refused:
        await world.pay(TOUR)
    assert refused.value.code == "OWNER_SIGNATURE_INVALID" and "unfreeze of budget 'team'" in refused.value.message
    _raw(world.ledger, "UPDATE budgets SET signature = NULL")
    with pytest.raises(ToolError) as unsigned:
        await world.pay(TOUR)
    assert unsigned.value.code == "OWNER_SIGNATURE_MISSING"
    assert "amp-tools budgets unfreeze team" in unsigned.value.hint
    assert world.sandbox.payments() == []
    world.control(False)  # the owner's signed unfreeze
    assert (await world.pay(TOUR))["status"] == "paid"
    assert len(world.sandbox.payments()) == 1
    # A freeze needs no signature: an unsigned one still stops the agent.
    world.control(True, key=None)
    with pytest.raises(PolicyViolation):
        await world.pay(ADAPTER)
    assert len(world.sandbox.payments()) == 1


async def test_without_a_pinned_key_nothing_is_checked_and_status_says_unsigned(target: str) -> None:
    w = World(target, pinned=False)
    try:
        _raw(w.ledger, "UPDATE budget_policies SET signature = NULL")
        assert (await w.pay(TOUR))["status"] == "paid"
        assert (await w.specs["budget_status"].ainvoke({}))["signed"] is False
    finally:
        w.ledger.close_sync()


def test_owner_key_from_the_environment_is_pinned(target: str, monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    pub = tmp_path / "owner.pub.json"
    pub.write_text(json.dumps(OWNER.public_jwk()))
    monkeypatch.setenv("AMP_TOOLS_OWNER_KEY", str(pub))
    w = World(target, pinned=False)
    try:
        assert w.toolkit.guard.owner is not None and w.toolkit.guard.owner.key.kid == OWNER.kid
    finally:
        w.ledger.close_sync()


def _signed_crew(target: str, crew: dict[str, Any]) -> tuple[Sandbox, LedgerBase, AmpToolkit]:
    """A crew budget stored and signed by the owner, and a pinned toolkit on it (no person approves)."""
    sandbox = Sandbox(SandboxConfig(idv_mode="manual", seed=11))
    ledger = _open(target, sandbox)
    ledger.create_budget_sync("team", BudgetPolicy.model_validate(crew), by="owner")
    now = ledger.clock.now()
    ledger.run_write_sync(lambda: sign_policy_steps(ledger.dialect, OWNER, "team", None, now=now))

    async def wallet(action: WalletAction) -> None:
        sandbox.complete_idv(action.auth_session_id)

    kit = AmpToolkit.for_sandbox(sandbox, None, ledger=ledger, budget_id="team", wallet_prompt=wallet,
                                 approver=CallbackApprover(lambda r: False), owner_key=OWNER.public_jwk())
    return sandbox, ledger, kit


async def test_a_parents_freeze_cleared_by_database_edit_stops_its_agents(target: str) -> None:
    crew = POLICY | {"agents": {"tours": {"total_budget": "200.00", "approval": {"confirm_above": "50.00"}}}}
    sandbox, ledger, kit = _signed_crew(target, crew)
    now = ledger.clock.now()
    try:
        tours = kit.for_agent("tours")
        specs = {s.name: s for s in tours.specs()}
        await specs["discover_merchants"].ainvoke({})
        await specs["search_offers"].ainvoke({"query": "*"})

        async def pay() -> dict[str, Any]:
            ck = await specs["checkout"].ainvoke({"offer_id": TOUR, "quantity": 1})
            result: dict[str, Any] = await specs["pay"].ainvoke({"checkout_id": ck["checkout_id"]})
            return result

        assert (await pay())["status"] == "paid"
        ledger.run_write_sync(lambda: freeze_signed_steps(ledger.dialect, OWNER, "team", True, by="owner",
                                                          reason="audit", now=now))
        _raw(ledger, "UPDATE budget_controls SET frozen = 0 WHERE budget_id = 'team'")
        with pytest.raises(ToolError) as refused:
            await pay()
        assert refused.value.code == "OWNER_SIGNATURE_INVALID" and "unfreeze of budget 'team'" in refused.value.message
        assert len(sandbox.payments()) == 1
    finally:
        ledger.close_sync()


# ------------------------------------------------------------------------ all-time totals at pay time
# Each limit is 100.00 USD and two tours (90.00) are paid first, so the adapter (29.99) is over it; the
# attacker then lowers the all-time figure that limit is decided on (the row and the SQL that lowers it).
_LOWERED: dict[str, tuple[dict[str, Any], str, str, str]] = {
    "total_budget": ({"total_budget": "100.00"},
                     "UPDATE budgets SET used_minor = 0, used_count = 0 WHERE budget_id = 'team'",
                     "for all payments says 0 minor units in 0 payments", "budget 'team' totals"),
    "merchant_cap": ({"merchants": {"caps": {"SUNNY-TOURS": "100.00"}}},
                     "UPDATE usage_totals SET used_minor = used_minor - 4500 WHERE budget_id = 'team' "
                     "AND scope = 'merchant' AND key = 'SUNNY-TOURS'",
                     "for merchant 'SUNNY-TOURS' says 4500 minor units in 2 payments",
                     "usage total of budget 'team' for merchant 'SUNNY-TOURS'"),
    "mcc_cap": ({"mccs": {"caps": {"4722": "100.00"}}},
                "UPDATE usage_totals SET used_minor = 0 WHERE budget_id = 'team' AND scope = 'mcc' AND key = '4722'",
                "for mcc '4722' says 0 minor units in 2 payments", "usage total of budget 'team' for mcc '4722'"),
}


def _limited(limit: dict[str, Any]) -> dict[str, Any]:
    return {"name": "team", "currency": "USD", "total_budget": "500.00", "approval": {"confirm_above": "50.00"},
            **limit}


@pytest.mark.parametrize("limit", sorted(_LOWERED))
async def test_lowered_all_time_totals_do_not_loosen_the_total_or_a_cap(target: str, backend: str,
                                                                       limit: str) -> None:
    policy, tamper, said, verify_names = _LOWERED[limit]
    w = World(target, policy=_limited(policy))
    try:
        await w.pay(TOUR)
        await w.pay(TOUR)  # 90.00 of the 100.00 limit
        charged = w.charges()
        assert len(charged) == 2
        with pytest.raises(PolicyViolation):
            await w.pay(ADAPTER)  # 119.99 > 100.00: the limit holds while the ledger is honest
        _raw(w.ledger, tamper)
        with pytest.raises(ToolError) as refused:
            await w.pay(ADAPTER)  # without the check: 119.99 paid on a 100.00 limit
        assert refused.value.code == "LEDGER_TAMPERED"
        assert said in refused.value.message and "entries sum to 9000 in 2" in refused.value.message
        assert "audit verify" in (refused.value.hint or "")
        assert w.charges() == charged  # nothing more reached the network
        assert w.refusals() == ["LEDGER_TAMPERED"]
        entries = _raw(w.ledger, "SELECT COUNT(*), SUM(budget_minor) FROM entries WHERE status = 'committed'")
        assert [int(v) for v in entries[0]] == [2, 9000]
        report = w.ledger.audit.verify_sync()
        assert not report.ok and verify_names in report.problem
    finally:
        w.ledger.close_sync()


async def test_refunds_and_an_honest_ledger_keep_the_totals_check_quiet(world: World) -> None:
    """A refund lowers the totals and the entries' counted amounts together: no false alarm."""
    ck = await world.checkout(TOUR)
    await world.pay(TOUR, checkout_id=ck)
    await world.specs["refund"].ainvoke({"checkout_id": ck, "amount": "10.00"})
    assert (await world.pay(ADAPTER))["status"] == "paid"  # checked against the refunded totals
    used = _raw(world.ledger, "SELECT used_minor, used_count FROM budgets WHERE budget_id = 'team'")
    assert [int(v) for v in used[0]] == [4500 - 1000 + 2999, 2]
    assert len(world.sandbox.payments()) == 2 and world.refusals() == []


async def test_without_a_pinned_key_lowered_totals_are_left_to_audit_verify(target: str) -> None:
    """Unpinned (local development) behaviour is unchanged: the agent trusts the stored totals."""
    w = World(target, pinned=False, policy=_limited({"total_budget": "100.00"}))
    try:
        await w.pay(TOUR)
        await w.pay(TOUR)
        _raw(w.ledger, "UPDATE budgets SET used_minor = 0, used_count = 0 WHERE budget_id = 'team'")
        assert (await w.pay(ADAPTER))["status"] == "paid"
        assert len(w.sandbox.payments()) == 3 and w.refusals() == []
        assert not w.ledger.audit.verify_sync().ok
    finally:
        w.ledger.close_sync()


# Agent tours spends 90.00 of the root's 100.00 (or its day's 90.00); agent gear, with room of its own, then
# asks for 29.99: only the root's figure stops it, and the attacker lowers only the root's rows.
_ANCESTOR = {
    "root_total": ({"total_budget": "100.00"},
                   "UPDATE budgets SET used_minor = 0, used_count = 0 WHERE budget_id = 'team'",
                   "the all-time usage of budget 'team' for all payments says 0 minor units in 0 payments"),
    "root_day_buckets": ({"windows": {"day": {"limit": "90.00"}}},
                         "UPDATE usage_buckets SET used_minor = 0, used_count = 0 WHERE budget_id = 'team'",
                         "usage of budget 'team' for all payments over the last 2 UTC day(s) says 0 minor units"),
}


@pytest.mark.parametrize("tamper", sorted(_ANCESTOR))
async def test_an_ancestors_lowered_usage_does_not_loosen_its_limit_for_a_sub_budget(target: str, backend: str,
                                                                                    tamper: str) -> None:
    limit, sql, said = _ANCESTOR[tamper]
    crew = {"name": "team", "currency": "USD", "total_budget": "500.00", "approval": {"confirm_above": "50.00"},
            **limit, "agents": {name: {"total_budget": "100.00", "approval": {"confirm_above": "50.00"}}
                               for name in ("tours", "gear")}}
    sandbox, ledger, kit = _signed_crew(target, crew)
    try:
        agents = {name: {s.name: s for s in kit.for_agent(name).specs()} for name in ("tours", "gear")}
        for specs in agents.values():
            await specs["discover_merchants"].ainvoke({})
            await specs["search_offers"].ainvoke({"query": "*"})

        async def pay(agent: str, offer: str) -> dict[str, Any]:
            specs = agents[agent]
            ck = await specs["checkout"].ainvoke({"offer_id": offer, "quantity": 1})
            result: dict[str, Any] = await specs["pay"].ainvoke({"checkout_id": ck["checkout_id"]})
            return result

        assert (await pay("tours", TOUR))["status"] == "paid"
        assert (await pay("tours", TOUR))["status"] == "paid"  # 90.00: the root's limit has 10.00 or less left
        with pytest.raises(PolicyViolation) as over:
            await pay("gear", ADAPTER)
        assert "team" in over.value.message
        _raw(ledger, sql)
        with pytest.raises(ToolError) as refused:
            await pay("gear", ADAPTER)  # without the check the root would decide on zero: 119.99 paid
        assert refused.value.code == "LEDGER_TAMPERED" and said in refused.value.message
        assert "entries sum to 9000 in 2" in refused.value.message
        assert len(sandbox.payments()) == 2
        rows = _raw(ledger, "SELECT payload FROM audit WHERE kind = 'owner_authority_refused'")
        assert [json.loads(r[0])["code"] for r in rows] == ["LEDGER_TAMPERED"]
        assert not ledger.audit.verify_sync().ok
    finally:
        ledger.close_sync()


async def test_a_merchant_marked_as_already_paid_still_needs_the_first_payment_approved(target: str,
                                                                                      backend: str) -> None:
    """`confirm_new_merchants`: the first payment to a merchant needs the owner's approval. The attacker
    writes a totals row saying one payment to it was committed, so the merchant would look known."""
    w = World(target, policy=POLICY | {"approval": {"confirm_above": "50.00", "confirm_new_merchants": True}})
    try:
        with pytest.raises(ApprovalPending):
            await w.pay(TOUR)  # honest ledger: a new merchant is asked about
        _raw(w.ledger, "UPDATE usage_totals SET committed_count = 1 WHERE budget_id = 'team' AND scope = 'merchant' "
                       "AND key = 'SUNNY-TOURS'")  # that payment is held, not committed
        with pytest.raises(ToolError) as refused:
            await w.pay(TOUR)  # without the check: paid with no approval asked
        assert refused.value.code == "LEDGER_TAMPERED"
        assert "records 1 committed payments to merchant 'SUNNY-TOURS', but its entries hold none" \
            in refused.value.message
        assert w.sandbox.payments() == []
        assert w.refusals() == ["LEDGER_TAMPERED"]
    finally:
        w.ledger.close_sync()
