"""The travel demo in each framework, and the `amp-tools` command a user meets first.

`run_trip` is what `amp-tools demo travel` runs: the scripted travel brain books a flight, a
negotiated hotel (the person approves it) and a car on the embedded sandbox.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from amp_examples.travel_booking.run import POLICY_FILE, run_trip
from amp_tools.money import Money
from amp_tools.policy import load_policy

ROOT = Path(__file__).resolve().parents[2]
CLI = [str(Path(sys.executable).parent / "amp-tools")]  # the console script the venv installed
MERCHANTS = ["Skylark Air", "KL Grand Hotel", "Malaya Car Rental"]


async def _trip(framework: str, tmp_path: Path, approve: str = "yes") -> tuple[dict[str, Any], str]:
    screen = io.StringIO()
    console = Console(file=screen, width=120, force_terminal=False, color_system=None)
    outcome = await run_trip(framework, approve=approve, console=console, ledger_path=str(tmp_path / "ledger.db"))
    return outcome, screen.getvalue()


def _logged(outcome: dict[str, Any], tool: str) -> list[dict[str, Any]]:
    return [e for e in outcome["log"] if e["tool"] == tool]


@pytest.mark.parametrize("framework", ["langchain", "crewai", "autogen", "agent-framework"])
async def test_travel_demo_books_three_payments_within_budget(framework: str, tmp_path: Path) -> None:
    outcome, screen = await _trip(framework, tmp_path)

    entries = list(reversed(outcome["entries"]))
    assert [(e.merchant_name, e.status) for e in entries] == [(m, "committed") for m in MERCHANTS]
    assert [str(e.amount) for e in entries] == ["189.00 SGD", "1102.00 MYR", "390.00 MYR"]
    # The hotel was negotiated below its list price before it was paid.
    [negotiated] = [e["result"] for e in _logged(outcome, "negotiate")]
    assert Money.parse(negotiated["total"]["amount"], "MYR") < Money.parse(negotiated["list_total"]["amount"], "MYR")
    assert entries[1].amount == Money.parse(negotiated["total"]["amount"], "MYR")
    # The person was asked about the hotel (above the 200 USD threshold) and said yes.
    assert screen.count("approval requested") == 1 and "person: approves" in screen
    assert "Pay 1102.00 MYR (= 231.42 USD from the budget) to KL Grand Hotel" in screen
    # Budget left is the total less what was paid, in the policy's currency.
    policy = load_policy(POLICY_FILE)
    spent = sum((e.budget_amount for e in entries), Money.zero("USD"))
    left = outcome["report"]["total"]["left"]
    assert Money.parse(left["amount"], left["currency"]) == policy.total_budget - spent == Money.parse("746.82", "USD")
    assert outcome["audit_ok"] and outcome["audit_records"] >= 6
    assert sorted(p["merchantId"] for p in outcome["sandbox_payments"] if p["status"] == "SUCCESS") == [
        "KL-GRAND-HOTEL", "MALAYA-CARS", "SKYLARK-AIR"]
    assert "left 746.82 USD" in outcome["final"]


async def test_travel_demo_declined_hotel_pays_the_other_two(tmp_path: Path) -> None:
    outcome, screen = await _trip("langchain", tmp_path, approve="no")

    entries = list(reversed(outcome["entries"]))
    assert [(e.merchant_name, e.status) for e in entries] == [
        ("Skylark Air", "committed"), ("KL Grand Hotel", "released"), ("Malaya Car Rental", "committed")]
    assert entries[1].reason == "APPROVAL_DENIED"
    [declined] = [e for e in _logged(outcome, "pay") if "error" in e]
    assert declined["error"] == "APPROVAL_DENIED" and "KL Grand Hotel" in declined["message"]
    assert "person: declines" in screen
    assert sorted(p["merchantId"] for p in outcome["sandbox_payments"] if p["status"] == "SUCCESS") == [
        "MALAYA-CARS", "SKYLARK-AIR"]
    left = outcome["report"]["total"]["left"]
    assert left == {"amount": "978.24", "currency": "USD"}  # 1200.00 - 139.86 - 81.90
    assert outcome["audit_ok"]
    # The person reads what happened, not the hint meant for the model.
    assert "- not booked: KL Grand Hotel (1102.00 MYR): you declined it when asked." in outcome["final"]
    assert "retry" not in outcome["final"].lower() and "tell the user" not in outcome["final"].lower()


# ---------------------------------------------------------------------- the command line
def _cli(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AMP_TOOLS_HOME": str(tmp_path / "home"), "TMPDIR": str(tmp_path), "COLUMNS": "120"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120, check=False)


@pytest.mark.parametrize("framework", ["langchain", "agent-framework"])
def test_demo_command_runs_and_prints_the_receipt(framework: str, tmp_path: Path) -> None:
    done = _cli("demo", "travel", "--framework", framework, tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "receipt" in done.stdout and "audit chain ok" in done.stdout
    for merchant in MERCHANTS:
        assert merchant in done.stdout
    assert "left 746.82 USD" in done.stdout and "Traceback" not in done.stderr


def test_help_lists_the_commands(tmp_path: Path) -> None:
    done = _cli("--help", tmp_path=tmp_path)
    assert done.returncode == 0
    for command in ("demo", "policy", "approvals", "ledger", "audit", "sandbox"):
        assert command in done.stdout


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "examples" / "policies").iterdir()))
def test_every_example_policy_checks_ok(name: str, tmp_path: Path) -> None:
    done = _cli("policy", "check", f"examples/policies/{name}", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"examples/policies/{name}: OK")
    assert done.stdout.count("\n") == 1


def test_broken_policy_exits_2_with_a_short_message(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("currency: USD\ntotal_budget: 12.5\n")
    done = _cli("policy", "check", str(broken), tmp_path=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    # One problem, one line naming the file and the field.
    assert len(lines) == 1 and lines[0].startswith(f"error: INVALID_CONFIG: {broken}: total_budget: ")
    assert "float" in lines[0]


async def test_travel_demo_passes_against_a_reference_like_network(tmp_path: Path) -> None:
    """No merchant registry (merchants from a directory), no order-status extension, and a wallet that
    confirms half a second after asking, as the AMP reference services behave: the same trip, the same sums."""
    from amp_tools.sandbox import SandboxConfig

    screen = io.StringIO()
    console = Console(file=screen, width=120, force_terminal=False, color_system=None)
    outcome = await run_trip("langchain", console=console, ledger_path=str(tmp_path / "ledger.db"),
                             sandbox_config=SandboxConfig.reference_like(seed=7))
    entries = list(reversed(outcome["entries"]))
    assert [(e.merchant_name, e.status) for e in entries] == [(m, "committed") for m in MERCHANTS]
    assert [str(e.amount) for e in entries] == ["189.00 SGD", "1102.00 MYR", "390.00 MYR"]
    left = outcome["report"]["total"]["left"]
    assert Money.parse(left["amount"], left["currency"]) == Money.parse("746.82", "USD")
    pays = [e["result"] for e in _logged(outcome, "pay") if "result" in e]
    assert [p["mode"] for p in pays] == ["delegated"] * 3  # the pending mandate was awaited, never switched
    assert sorted(p["merchantId"] for p in outcome["sandbox_payments"] if p["status"] == "SUCCESS") == [
        "KL-GRAND-HOTEL", "MALAYA-CARS", "SKYLARK-AIR"]
    assert not [m for m in outcome["sandbox_payments"] if m.get("status") != "SUCCESS"]
    assert outcome["audit_ok"]


def test_unknown_framework_names_every_choice(tmp_path: Path) -> None:
    done = _cli("demo", "travel", "--framework", "semantic-kernel", tmp_path=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert "unknown framework 'semantic-kernel'; expected langchain, crewai, autogen or agent-framework" in done.stderr
