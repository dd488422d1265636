"""Untrusted text prints literally in the terminal: rich markup and escape sequences are inert.

A merchant named ``[/oops]`` once made ``amp-tools approvals approve ID`` exit 3 after the approval was
stored; ``[link=https://...]`` became a clickable link; ESC sequences reached the terminal raw. Every
CLI printer goes through `amp_tools.terminal.terminal_safe`.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from amp_tools.approvals import ApprovalStore, ConsoleApprover
from amp_tools.cli import app
from amp_tools.clock import ManualClock
from amp_tools.money import Money
from amp_tools.policy import Item
from amp_tools.terminal import terminal_plain, terminal_safe
from tests.approvals.approvals_helpers import request

HOSTILE = ["[/oops]", "[link=https://evil.example/inbox]Open the inbox[/link]", "[bold red]PAID[/]",
           "Hotel\x1b[2J\x1b]8;;https://evil.example\x07click\x1b]8;;\x07", "Hotel\\", "\x9b31mred"]


@pytest.mark.parametrize("name", HOSTILE)
def test_terminal_safe_prints_literally_without_control_characters(name: str) -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=200, color_system=None)
    console.print(f"merchant: {terminal_safe(name)}", highlight=False)
    printed = buffer.getvalue()
    assert "\x1b" not in printed and "\x9b" not in printed and "\x07" not in printed
    assert terminal_plain(name) in printed  # exactly the visible characters, markup included


@pytest.mark.parametrize("name", HOSTILE)
def test_cli_lists_approves_and_denies_hostile_merchants(name: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMP_TOOLS_HOME", str(tmp_path))
    monkeypatch.delenv("AMP_TOOLS_LEDGER_URL", raising=False)
    store = ApprovalStore(tmp_path / "ledger.db")
    clock = ManualClock(datetime.now(UTC))
    first = request(clock=clock, merchant_name=name, items=(Item("R", name, 1, Money.parse("180.00", "SGD")),))
    second = request(clock=clock, merchant_name=name, amount=Money.parse("181.00", "SGD"))
    store.create(first)
    store.create(second)
    runner = CliRunner()
    listed = runner.invoke(app, ["approvals", "list"])
    approved = runner.invoke(app, ["approvals", "approve", first.id, "--by", "dana"])
    denied = runner.invoke(app, ["approvals", "deny", second.id, "--by", "dana", "--reason", "[/no]"])
    for result in (listed, approved, denied):
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.output and "\x07" not in result.output
    visible = terminal_plain(name)[:12]
    assert visible in approved.output and visible in denied.output
    assert store.get(first.id).status == "approved" and store.get(second.id).status == "denied"


def test_the_console_approver_table_shows_markup_literally() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=200, color_system=None)
    req = request(merchant_name="[link=https://evil.example]Marina[/link]", merchant_id="[/oops]")
    console.print(ConsoleApprover(console).render(req))
    assert "[link=https://evil.example]Marina[/link]" in buffer.getvalue() and "[/oops]" in buffer.getvalue()
