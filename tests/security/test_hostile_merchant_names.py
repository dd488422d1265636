"""A merchant whose own name is hostile reaches neither the model nor the person raw.

The sandbox's SUNNY-TOURS is renamed, at the source, to a 100,000-character name with a bidi
override (U+202E) and NUL..STX, and its tour gets a name just as bad. Every path a merchant's
text can take is walked: discovery, search, checkout, the APPROVAL_PENDING and APPROVAL_DENIED
texts, the stored approval request (summary, console table, public form), the wallet-pending
text and the wallet prompt, a mandate, the pay result, order_status and budget_status. The
exact name still goes to the network where it is signed, so the payment itself succeeds.
"""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from amp_tools.amp.keys import AgentKey
from amp_tools.approvals import (
    ApprovalDecision,
    ApprovalRequest,
    ApprovalStore,
    Approver,
    CallbackApprover,
    ConsoleApprover,
    OutOfBandApprover,
)
from amp_tools.errors import ApprovalDenied, ApprovalPending, ToolError
from amp_tools.ledger import open_ledger
from amp_tools.money import Money
from amp_tools.policy import parse_policy
from amp_tools.sandbox import Sandbox, SandboxConfig
from amp_tools.toolkit import AmpToolkit, WalletAction
from amp_tools.untrusted import WireText, clean_text, exact
from tests.security.security_support import expiry

HOSTILE_NAME = "Sunny\u202e Tours\x00\x01\x02" + "!" * 100_000
HOSTILE_ITEM = "City tour\u202e\x00\x01\x02" + "?" * 100_000
FORBIDDEN = {"\u202e", "\x00", "\x01", "\x02"}
OPEN = {"currency": "USD", "total_budget": "500.00", "per_transaction_max": "100.00",
        "approval": {"confirm_above": "30.00"}}


def assert_clean(*texts: object) -> None:
    for value in texts:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
        assert not FORBIDDEN & set(text), text[:200]
        assert "!" * 200 not in text and "?" * 200 not in text, f"unbounded merchant text ({len(text)} chars)"
        assert len(text) < 6000


def assert_error_clean(exc: ToolError) -> None:
    assert_clean(str(exc), exc.message, exc.hint, exc.to_dict())


class Person:
    """The person's side: answers approvals as told and confirms in the wallet when told to."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox, self.answer, self.confirm = sandbox, True, False
        self.asked: list[ApprovalRequest] = []
        self.wallet: list[WalletAction] = []

    def approve(self, request: ApprovalRequest) -> ApprovalDecision:
        self.asked.append(request)
        return ApprovalDecision(self.answer, "" if self.answer else "no", "alice")

    async def prompt(self, action: WalletAction) -> None:
        self.wallet.append(action)
        if self.confirm:
            self.sandbox.complete_idv(action.auth_session_id)


def hostile_session(approver: Approver | None = None) -> tuple[Sandbox, AmpToolkit, Person]:
    sb = Sandbox(SandboxConfig(idv_mode="manual", seed=5))
    sunny = sb.state.merchants["SUNNY-TOURS"]
    sunny.seed.name = HOSTILE_NAME
    sunny.products["SUN-KL-CITY-TOUR"].name = HOSTILE_ITEM
    person = Person(sb)
    folder = Path(tempfile.mkdtemp(prefix="amp-hostile-"))
    tk = AmpToolkit.for_sandbox(sb, parse_policy(OPEN), ledger=open_ledger(str(folder / "ledger.db"), clock=sb.clock),
                                approver=approver or CallbackApprover(person.approve, name="alice"),
                                wallet_prompt=person.prompt, agent_key=AgentKey.generate(kid="hostile"),
                                run_id="hostile-run", budget_id="hostile")
    return sb, tk, person


async def call(tk: AmpToolkit, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    spec = next(s for s in tk.specs() if s.name == tool)
    result = await spec.ainvoke(args)
    assert_clean(result)
    return result


async def shop(tk: AmpToolkit) -> str:
    found = await call(tk, "discover_merchants", {})
    assert any(m["merchant_id"] == "SUNNY-TOURS" for m in found["merchants"])
    offers = await call(tk, "search_offers", {"query": "tour", "merchant_ids": ["SUNNY-TOURS"]})
    tour = next(o for o in offers["offers"] if o["offer_id"] == "SUNNY-TOURS:SUN-KL-CITY-TOUR")
    ck = await call(tk, "checkout", {"offer_id": tour["offer_id"]})  # 45.00 USD, above confirm_above
    return str(ck["checkout_id"])


def test_clean_text_strips_controls_and_bidi_and_bounds_length() -> None:
    assert clean_text("a\u202eb\x00c\x01\x02d\x1b[2J\ne\u200bf") == "abcd[2J ef"
    cut = clean_text("x" * 100_000)
    assert len(cut) == 200 and cut.endswith("…")
    assert clean_text("  Marina   Bay\tHotel \n") == "Marina Bay Hotel"
    name = WireText(HOSTILE_NAME)
    assert len(name) == 200 and not FORBIDDEN & set(name) and exact(name) == HOSTILE_NAME
    assert json.dumps(name) == json.dumps(str(name)) and repr(name) == repr(str(name))


async def test_out_of_band_request_and_pending_text_are_clean(tmp_path: Path) -> None:
    store = ApprovalStore(open_ledger(tmp_path / "approvals.db"))
    sb, tk, _ = hostile_session(OutOfBandApprover(store, clock=Sandbox().clock))
    checkout_id = await shop(tk)
    with pytest.raises(ApprovalPending) as pending:
        await call(tk, "pay", {"checkout_id": checkout_id})
    assert_error_clean(pending.value)
    assert "Sunny Tours" in pending.value.message
    [record] = store.list("pending")
    request = record.request
    assert request.amount == Money(4500, "USD")
    shown = io.StringIO()
    Console(file=shown, width=120, force_terminal=False).print(ConsoleApprover().render(request))
    assert_clean(request.merchant_name, request.summary(), request.to_public(), shown.getvalue(),
                 [i.name for i in request.items])
    assert "Sunny Tours" in request.summary() and sb.payments() == []


async def test_denied_text_wallet_pending_pay_result_and_order_status_are_clean() -> None:
    sb, tk, person = hostile_session()
    checkout_id = await shop(tk)

    person.answer = False
    with pytest.raises(ApprovalDenied) as denied:
        await call(tk, "pay", {"checkout_id": checkout_id})
    assert_error_clean(denied.value)
    person.answer = True

    # Human-present: the wallet must be linked, then the purchase confirmed, by the person.
    with pytest.raises(ToolError) as linking:
        await call(tk, "pay", {"checkout_id": checkout_id})
    assert linking.value.code == "WALLET_CONFIRMATION_REQUIRED"
    sb.complete_idv(person.wallet[-1].auth_session_id)
    with pytest.raises(ToolError) as purchase:
        await call(tk, "pay", {"checkout_id": checkout_id})
    assert purchase.value.code == "WALLET_CONFIRMATION_REQUIRED" and "Sunny Tours" in purchase.value.message
    assert_error_clean(purchase.value)
    assert_clean([a.summary for a in person.wallet])
    sb.complete_idv(person.wallet[-1].auth_session_id)

    paid = await call(tk, "pay", {"checkout_id": checkout_id})
    assert paid["status"] == "paid" and paid["merchant"].startswith("Sunny Tours!") and len(paid["merchant"]) == 200
    assert [(p["merchantId"], p["amount"]["cent"]) for p in sb.payments()] == [("SUNNY-TOURS", 4500)]
    assert {r.amount for r in person.asked} == {Money(4500, "USD")}
    assert_clean([r.merchant_name for r in person.asked], [r.summary() for r in person.asked])
    order = await call(tk, "order_status", {"checkout_id": checkout_id})
    assert order["status"] == "PAID" and order["merchant"] == paid["merchant"]
    status = await call(tk, "budget_status", {})
    assert status["merchants"]["SUNNY-TOURS"]["used"] == {"amount": "45.00", "currency": "USD"}
    entries = tk.ledger.entries_sync()
    assert [e.status for e in entries if e.status != "released"] == ["committed"]
    assert_clean([e.merchant_name for e in entries])


async def test_a_mandate_scoped_to_the_hostile_merchant_signs_its_exact_name_and_shows_a_clean_one() -> None:
    sb, tk, person = hostile_session()
    person.confirm = True
    await call(tk, "discover_merchants", {})
    mandate = await call(tk, "request_mandate", {"purpose": "a city tour in Kuala Lumpur", "budget": "100.00",
                                                 "expires_at": expiry_of(sb), "merchant_ids": ["SUNNY-TOURS"]})
    assert mandate["status"] == "ACTIVE"
    assert_clean([a.summary for a in person.wallet])
    # The network holds the exact name in the mandate's scope; the model only ever saw the clean one.
    held = sb.mandate(mandate["mandate_id"])
    assert [k for k, v in held.items() if isinstance(v, dict) and v.get("merchantNameList") == [HOSTILE_NAME]]
    checkout_id = await shop(tk)
    paid = await call(tk, "pay", {"checkout_id": checkout_id})
    assert paid["status"] == "paid" and paid["mode"] == "delegated"
    status = await call(tk, "budget_status", {})
    assert status["total"]["used"] == {"amount": "45.00", "currency": "USD"}


def expiry_of(sb: Sandbox) -> str:
    class _S:
        sandbox = sb

    return expiry(_S())  # type: ignore[arg-type]
