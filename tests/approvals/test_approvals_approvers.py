"""Approvers: deny default, callbacks (sync and async), console prompt, out-of-band grants."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from rich.console import Console

from amp_tools.approvals import (
    ApprovalDecision,
    ApprovalRequest,
    ApprovalStateError,
    ApprovalStore,
    CallbackApprover,
    ConsoleApprover,
    DenyApprover,
    OutOfBandApprover,
)
from amp_tools.approvals.approvers import ask
from amp_tools.clock import ManualClock
from amp_tools.errors import ApprovalPending
from amp_tools.ledger import open_ledger
from amp_tools.money import Money
from tests.approvals.approvals_helpers import T0, request


async def test_deny_approver_declines_saying_no_person_is_available() -> None:
    decision = await ask(DenyApprover(), request())
    assert decision.approved is False
    assert "no person is available" in decision.reason
    assert decision.approver == "deny-default"


async def test_callback_approver_sync_and_async() -> None:
    seen: list[str] = []

    def sync_fn(req: ApprovalRequest) -> bool:
        seen.append(req.id)
        return req.budget_amount <= Money.parse("200.00", "USD")

    async def async_fn(req: ApprovalRequest) -> ApprovalDecision:
        return ApprovalDecision(False, "over my limit", "manager")

    req = request()
    assert await ask(CallbackApprover(sync_fn), req) == ApprovalDecision(True, "", "callback")
    assert seen == [req.id]
    assert await ask(CallbackApprover(async_fn), req) == ApprovalDecision(False, "over my limit", "manager")
    assert await ask(CallbackApprover(lambda r: False, name="ops"), req) == ApprovalDecision(
        False, "declined by callback", "ops")


async def test_ask_normalises_plain_functions_and_rejects_other_answers() -> None:
    async def coro(req: ApprovalRequest) -> bool:
        return True

    assert (await ask(coro, request())).approved is True
    assert await ask(lambda r: ApprovalDecision(True), request()) == ApprovalDecision(True, "", "function")
    with pytest.raises(TypeError, match="expected a bool or an ApprovalDecision"):
        await ask(lambda r: "yes", request())  # type: ignore[arg-type]


@pytest.mark.parametrize(("typed", "approved"), [("y", True), ("YES ", True), ("n", False), ("", False),
                                                 ("maybe", False)])
async def test_console_approver_with_fake_input(typed: str, approved: bool) -> None:
    out = io.StringIO()
    prompts: list[str] = []

    def fake_input(prompt: str) -> str:
        prompts.append(prompt)
        return typed

    approver = ConsoleApprover(console=Console(file=out, width=120, color_system=None), input_fn=fake_input)
    decision = await ask(approver, request())
    assert decision.approved is approved and decision.approver == "console"
    # An unreadable answer is asked again (five times at most) rather than taken as a no.
    unreadable = typed.strip().lower() not in ("y", "yes", "n", "no", "")
    assert prompts == ["Approve this payment? [y/N] "] * (5 if unreadable else 1)
    shown = out.getvalue()
    for text in ("Marina Hotel (MARINA-HOTEL)", "Deluxe room, 1 night", "180.00 SGD", "134.29 USD",
                 "above the confirmation threshold", "865.71 USD", "2025-06-04T12:15:00"):
        assert text in shown


async def test_console_approver_eof_and_no_tty_deny(monkeypatch: pytest.MonkeyPatch) -> None:
    def eof(prompt: str) -> str:
        raise EOFError

    quiet = Console(file=io.StringIO())
    decision = await ask(ConsoleApprover(console=quiet, input_fn=eof), request())
    assert decision == ApprovalDecision(False, "no answer (end of input)", "console")
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))  # not a TTY
    decision = await ask(ConsoleApprover(console=quiet), request())
    assert decision.approved is False and "no terminal" in decision.reason


async def test_out_of_band_pending_then_approved_once(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    store = ApprovalStore(open_ledger(tmp_path / "a.db"), clock=clock)
    approver = OutOfBandApprover(store)
    req = request(clock=clock)
    with pytest.raises(ApprovalPending) as first:
        await ask(approver, req)
    approval_id = first.value.details["approval_id"]
    assert approval_id == req.id
    assert f"amp-tools approvals approve {req.id}" in first.value.message
    assert "waiting for a person's approval" in first.value.message
    # A retry before the person answers stays pending on the same id (no second request).
    retry = request(clock=clock)
    with pytest.raises(ApprovalPending) as again:
        await ask(approver, retry)
    assert again.value.details["approval_id"] == req.id
    assert len(store.list()) == 1
    store.approve(req.id, "alice")
    assert await ask(approver, retry) == ApprovalDecision(True, "", "alice")
    # The grant is single use: the next identical payment needs a new approval.
    with pytest.raises(ApprovalPending) as fresh:
        await ask(approver, request(clock=clock))
    assert fresh.value.details["approval_id"] != req.id


async def test_out_of_band_denied_and_expired(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    store = ApprovalStore(open_ledger(tmp_path / "a.db"), clock=clock)
    approver = OutOfBandApprover(store)
    req = request(clock=clock, ttl=timedelta(minutes=10))
    with pytest.raises(ApprovalPending):
        await ask(approver, req)
    store.deny(req.id, "bob", "not this hotel")
    assert await ask(approver, req) == ApprovalDecision(False, "not this hotel", "bob")

    other = request(clock=clock, ttl=timedelta(minutes=10), merchant_id="KL-GRAND-HOTEL")
    with pytest.raises(ApprovalPending):
        await ask(approver, other)
    clock.advance(minutes=11)
    later = request(clock=clock, ttl=timedelta(minutes=10), merchant_id="KL-GRAND-HOTEL")
    with pytest.raises(ApprovalPending) as exc:
        await ask(approver, later)
    assert exc.value.details["approval_id"] == later.id != other.id
    with pytest.raises(ApprovalStateError, match="expired"):
        store.approve(other.id, "alice")
