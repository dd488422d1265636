"""What a new user meets in the first hour: the demo's prompt mode, its receipt and ledger, the CLI.

Each test walks one step of the README the way a person would and checks what they see.
"""

from __future__ import annotations

import builtins
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import amp_tools
from amp_examples.travel_booking.run import run_trip
from amp_tools.approvals import ApprovalRequest, ApprovalStore, ConsoleApprover
from amp_tools.approvals.request import make_request
from amp_tools.clock import ManualClock
from amp_tools.errors import NotFound, PolicyViolation
from amp_tools.ledger import open_ledger
from amp_tools.money import Money
from amp_tools.policy.decide import Item, SpendIntent, Verdict

ROOT = Path(__file__).resolve().parents[2]
CLI = [str(Path(sys.executable).parent / "amp-tools")]


def cli(*args: str, home: Path, columns: int = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AMP_TOOLS_HOME": str(home), "COLUMNS": str(columns)}
    env.pop("AMP_TOOLS_LEDGER_URL", None)
    env.pop("AMP_TOOLS_MODEL", None)
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=180, check=False)


# ---------------------------------------------------------------------- prompt mode
class Terminal:
    """A person at a terminal: answers in order, remembering every question."""

    def __init__(self, answers: list[str]) -> None:
        self.answers, self.questions = list(answers), []

    def __call__(self, question: str = "") -> str:
        self.questions.append(question)
        return self.answers.pop(0)


class NoSpinnerConsole(Console):
    """A console that records whether anything tried to draw a spinner over the prompt."""

    spinners = 0

    def status(self, *args: Any, **kwargs: Any) -> Any:
        NoSpinnerConsole.spinners += 1
        return super().status(*args, **kwargs)


@pytest.fixture
def tty(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    class Stdin(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Stdin())
    yield


async def test_prompt_mode_asks_the_person_for_the_wallet_and_the_payment_and_asks_again(
        tty: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Link the wallet (after an unreadable answer), confirm the mandate, approve the hotel.
    person = Terminal(["maybe", "y", "yes", "y"])
    monkeypatch.setattr(builtins, "input", person)
    screen = io.StringIO()
    NoSpinnerConsole.spinners = 0
    console = NoSpinnerConsole(file=screen, width=120, force_terminal=False, color_system=None)
    outcome = await run_trip("langchain", approve="prompt", console=console, ledger_path=str(tmp_path / "l.db"))
    assert person.questions == ["Confirm in your wallet? [y/N] "] * 3 + ["Approve this payment? [y/N] "]
    assert person.answers == []
    text = screen.getvalue()
    assert "Please answer y or n (got 'maybe')" in text
    assert "confirmed by the user" not in text and text.count("wallet: confirmed by you") == 2
    assert NoSpinnerConsole.spinners == 0  # nothing redrawn over the questions
    assert [e.status for e in outcome["entries"]] == ["committed"] * 3


async def test_prompt_mode_declining_the_mandate_books_nothing(
        tty: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    person = Terminal(["y", "n"])  # links the wallet, declines the spending authorization
    monkeypatch.setattr(builtins, "input", person)
    console = Console(file=io.StringIO(), width=120, color_system=None)
    outcome = await run_trip("langchain", approve="prompt", console=console, ledger_path=str(tmp_path / "l.db"))
    assert outcome["entries"] == [] and outcome["sandbox_payments"] == []
    assert "did not authorize" in outcome["final"]


def approval_request(clock: ManualClock) -> ApprovalRequest:
    usd = Money(4500, "USD")
    intent = SpendIntent(action="pay", merchant_id="M1", merchant_name="Shop", mcc=None, amount=usd,
                         budget_amount=usd, fx_rate=None,
                         items=(Item(product_id="p", name="p", quantity=1, unit_amount=usd),),
                         human_present=True, checkout_id="c", at=clock.now())
    return make_request(intent, Verdict(approval_reasons=("x",), budget_left=usd, checked_rules=()),
                        budget_id="default", clock=clock)


async def test_console_approver_asks_again_until_yes_or_no() -> None:
    request = approval_request(ManualClock())
    for answers, approved in ((["ok", "sure", "Y"], True), (["?", "no"], False), ([""], False),
                              (["a", "b", "c", "d", "e", "y"], False)):
        person = Terminal(answers)
        shown = io.StringIO()
        decision = await ConsoleApprover(console=Console(file=shown), input_fn=person)(request)
        assert decision.approved is approved, answers
        assert len(person.questions) == min(len(answers), 5)
        assert shown.getvalue().count("Please answer y or n") == min(len(answers), 5) - (0 if len(answers) > 5 else 1)


# ---------------------------------------------------------------------- demo, receipt, ledger
def test_the_demo_uses_the_default_ledger_names_it_first_and_ledger_show_lists_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = cli("demo", "travel", "--approve", "no", home=home, columns=80)
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert first.startswith(f"ledger {home / 'ledger.db'}, budget kl-trip-")
    receipt = done.stdout.split("receipt", 1)[1]
    paid, not_paid = receipt.split("not paid:", 1)
    assert "KL Grand Hotel" not in paid and "Skylark Air: paid 189.00 SGD (= 139.86 USD)" in paid
    assert "KL Grand Hotel: 1102.00 MYR (= 231.42 USD) not paid (declined by the person)" in " ".join(
        not_paid.split())
    assert "Malaya Car Rental: paid 390.00 MYR (= 81.90 USD)" in " ".join(paid.split())
    assert "…" not in receipt.split("╭")[0]  # at 80 columns nothing in the receipt is cut

    budget = first.split(", budget ", 1)[1].split()[0].rstrip(",")
    listed = cli("ledger", "show", home=home, columns=80)
    assert listed.returncode == 0, listed.stderr
    assert "ledger: 1 budget" in listed.stdout and "1 budgets" not in listed.stdout and budget in listed.stdout
    assert f"show one: amp-tools ledger show --budget {budget}" in listed.stdout
    shown = cli("ledger", "show", "--budget", budget, home=home, columns=80)
    assert shown.returncode == 0, shown.stderr
    assert "3 entries" in shown.stdout
    for amount in ("189.00 SGD", "139.86 USD", "1102.00 MYR", "231.42 USD", "390.00 MYR", "81.90 USD"):
        assert amount in shown.stdout, (amount, shown.stdout)
    assert "…" not in shown.stdout
    assert cli("audit", "verify", home=home).stdout.startswith("audit chain ok: ")
    # A second run books under its own budget in the same ledger, and is not refused by the first.
    again = cli("demo", "travel", home=home)
    assert again.returncode == 0 and "left 746.82 USD" in again.stdout
    assert "ledger: 2 budgets" in cli("ledger", "show", home=home).stdout
    unknown = cli("ledger", "show", "--budget", "nope", home=home)
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert "no budget 'nope' in the ledger at" in unknown.stderr and "Traceback" not in unknown.stderr


# ---------------------------------------------------------------------- CLI
@pytest.mark.parametrize("command", [["ledger", "show"], ["audit", "verify"], ["audit", "export", "out.jsonl"]])
def test_read_only_commands_create_nothing_and_name_the_missing_ledger(command: list[str], tmp_path: Path) -> None:
    home = tmp_path / "home"
    missing = tmp_path / "nowhere" / "ledger.db"
    for args, where in (([], home / "ledger.db"), (["--ledger", str(missing)], missing)):
        done = cli(*command, *args, home=home)
        assert done.returncode == 2 and done.stdout == ""
        assert f"no ledger at {where}" in done.stderr and "Traceback" not in done.stderr
    assert not home.exists() and not missing.parent.exists() and not (ROOT / "out.jsonl").exists()


def test_approvals_list_validates_status_and_creates_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    bogus = cli("approvals", "list", "--status", "bogus", home=home)
    assert bogus.returncode == 2 and "ValueError" not in bogus.stderr
    assert "unknown --status 'bogus'; expected one of pending, approved, denied, consumed, expired, all" in bogus.stderr
    empty = cli("approvals", "list", "--status", "all", home=home)
    assert empty.returncode == 0 and "no approval requests yet" in empty.stdout
    assert not home.exists()
    assert "all" in cli("approvals", "list", "--help", home=home).stdout


def test_approvals_list_shows_the_expiry_with_its_date(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    clock = ManualClock()
    request = approval_request(clock)
    # In the ledger's database, where the CLI reads.
    ApprovalStore(open_ledger(home / "ledger.db"), clock=clock).open_or_create(request, clock.now())
    listed = cli("approvals", "list", home=home, columns=160)
    assert listed.returncode == 0, listed.stderr
    assert request.expires_at.strftime("%Y-%m-%d %H:%M:%S") in listed.stdout


def test_version_and_error_sentences(tmp_path: Path) -> None:
    done = cli("--version", home=tmp_path / "home")
    assert done.returncode == 0 and done.stdout.strip() == f"amp-agent-payments {amp_tools.__version__}"
    missing = cli("approvals", "approve", "nope", home=tmp_path / "home")
    assert "approval 'nope' does not exist. List approvals with" in missing.stderr
    assert str(NotFound("offer 'x' is unknown", hint="Use an offer_id.")) == (
        "NOT_FOUND: offer 'x' is unknown. Use an offer_id.")
    assert str(NotFound("done.", hint="Next.")) == "NOT_FOUND: done. Next."
    assert str(PolicyViolation("too much", rule="total_budget", hint="Ask less.")) == (
        "POLICY_VIOLATION: too much [policy: total_budget]. Ask less.")


async def test_unknown_offer_hint_and_fx_rate_without_parameters(tmp_path: Path) -> None:
    import httpx

    from amp_tools.ledger import open_ledger
    from amp_tools.policy import parse_policy
    from amp_tools.sandbox import Sandbox
    from amp_tools.toolkit import AmpToolkit

    sandbox = Sandbox()
    toolkit = AmpToolkit.for_sandbox(sandbox, parse_policy({"currency": "USD", "total_budget": "10.00"}),
                                     ledger=open_ledger(tmp_path / "l.db"), budget_id="first-hour")
    checkout = next(s for s in toolkit.specs() if s.name == "checkout")
    with pytest.raises(NotFound) as unknown:
        await checkout.ainvoke({"offer_id": "NOPE:NOPE"})
    assert unknown.value.hint == "Use an offer_id returned by search_offers."
    async with httpx.AsyncClient(transport=sandbox.transport(), base_url="http://sandbox") as http:
        for query, missing in (("", "from, to"), ("?from=MYR", "to"), ("?to=USD", "from")):
            body = (await http.get(f"/network/fxRate{query}")).json()
            assert body["success"] is False and body["resultCode"] == "PARAM_ILLEGAL", body
            assert f"missing query parameter(s) {missing}" in body["resultMessage"]
        ok = (await http.get("/network/fxRate?from=MYR&to=USD")).json()
        assert ok["success"] is True and ok["data"]["rate"].startswith("0.21")
    await toolkit.aclose()
