"""The owner's `amp-tools budgets` commands on SQLite and PostgreSQL: create, list, show, set-policy (diff,
confirmation, --yes), history, freeze / unfreeze, and `ledger tree` before any payment; hostile text in
budget ids, names and reasons reaches the terminal escaped."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from amp_tools.cli import app
from amp_tools.errors import ConfigError, NotFound
from amp_tools.ledger import open_ledger
from tests.ledger._ledger_helpers import PG_URL

runner = CliRunner()

TEAM = """name: team
currency: USD
total_budget: "500.00"
windows:
  day: {limit: "90.00"}
agents:
  hotel: {total_budget: "200.00"}
"""


@pytest.fixture
def url(backend: str, target: str) -> str:
    if backend == "sqlite":
        return target
    return f"{PG_URL}?options=-csearch_path%3D{target}"


def _run(*args: str, input: str | None = None) -> tuple[int, str, BaseException | None]:
    result = runner.invoke(app, list(args), input=input, env={"COLUMNS": "200"})
    return result.exit_code, result.output, result.exception


def _files(tmp_path: Path) -> tuple[Path, Path]:
    first, second = tmp_path / "team.yaml", tmp_path / "team-v2.yaml"
    first.write_text(TEAM)
    second.write_text(TEAM.replace('"90.00"', '"120.00"'))
    return first, second


def test_create_list_show_and_tree_before_any_payment(url: str, tmp_path: Path) -> None:
    first, _ = _files(tmp_path)
    code, out, exc = _run("budgets", "create", "team", "--policy", str(first), "--ledger", url, "--by", "carol")
    assert code == 0, (out, exc)
    assert "created budget team: policy version 1" in out and "500.00 USD" in out
    code, out, _ = _run("budgets", "list", "--ledger", url)
    assert code == 0 and "team/hotel" in out and "200.00 USD" in out and "500.00 USD" in out
    code, out, _ = _run("budgets", "show", "team", "--ledger", url)
    assert code == 0
    assert "policy version 1" in out and "frozen: no" in out and "pending approvals: none" in out
    assert "120.00" not in out and "90.00 USD" in out  # the day window: 0 used, 90.00 left
    code, out, exc = _run("ledger", "tree", "team", "--ledger", url)
    assert code == 0, (out, exc)
    assert "team  used 0.00 USD (0 payments)  of 500.00 USD, 500.00 USD left" in out
    assert "hotel  used 0.00 USD (0 payments)  of 200.00 USD, 200.00 USD left" in out


def test_set_policy_shows_the_diff_asks_and_versions(url: str, tmp_path: Path) -> None:
    first, second = _files(tmp_path)
    _run("budgets", "create", "team", "--policy", str(first), "--ledger", url, "--by", "carol")
    code, out, _ = _run("budgets", "set-policy", "team", "--policy", str(second), "--ledger", url, "--by", "dave",
                        input="n\n")
    assert code == 1 and "windows.day.limit: 90.00 -> 120.00" in out and "nothing changed" in out
    led = open_ledger(url)
    try:
        stored = led.get_budget_sync("team")
        assert stored is not None and stored.policy_version == 1
    finally:
        led.close_sync()
    code, out, _ = _run("budgets", "set-policy", "team", "--policy", str(second), "--ledger", url, "--by", "dave",
                        "--yes", "--note", "more per day")
    assert code == 0 and "stored policy version 2" in out
    code, out, _ = _run("budgets", "history", "team", "--ledger", url)
    assert code == 0
    assert "version 1" in out and "by carol" in out and "total_budget: (not set) -> 500.00" in out
    assert "version 2" in out and "by dave" in out and "more per day" in out
    assert "windows.day.limit: 90.00 -> 120.00" in out


def test_freeze_and_unfreeze(url: str, tmp_path: Path) -> None:
    first, _ = _files(tmp_path)
    _run("budgets", "create", "team", "--policy", str(first), "--ledger", url, "--by", "carol")
    code, out, _ = _run("budgets", "freeze", "team", "--reason", "trip cancelled", "--ledger", url, "--by", "carol")
    assert code == 0 and "froze budget team" in out
    code, out, _ = _run("budgets", "show", "team", "--ledger", url)
    assert "FROZEN by carol: trip cancelled" in out
    led = open_ledger(url)
    try:
        stored = led.get_budget_sync("team")
        assert stored is not None and stored.frozen and stored.frozen_reason == "trip cancelled"
    finally:
        led.close_sync()
    code, out, _ = _run("budgets", "unfreeze", "team", "--ledger", url, "--by", "carol")
    assert code == 0
    led = open_ledger(url)
    try:
        stored = led.get_budget_sync("team")
        assert stored is not None and not stored.frozen
    finally:
        led.close_sync()


def test_unknown_budget_and_retired_options_are_refused(url: str, tmp_path: Path) -> None:
    first, _ = _files(tmp_path)
    _run("budgets", "create", "team", "--policy", str(first), "--ledger", url, "--by", "carol")
    for args in (("budgets", "show", "ghost"), ("budgets", "history", "ghost"),
                 ("budgets", "freeze", "ghost", "--reason", "x"), ("ledger", "tree", "ghost")):
        code, _, exc = _run(*args, "--ledger", url)
        assert code != 0 and isinstance(exc, NotFound), args
    code, _, exc = _run("budgets", "set-policy", "team/hotel", "--policy", str(first), "--ledger", url, "--yes")
    assert isinstance(exc, ConfigError) and "budgets set-policy team --policy FILE" in str(exc)
    code, _, exc = _run("ledger", "tree", "team", "--ledger", url, "--policy", str(first))
    assert isinstance(exc, ConfigError) and "stored policy" in str(exc)


def test_hostile_text_is_escaped_for_the_terminal(tmp_path: Path) -> None:
    url = str(tmp_path / "ledger.db")
    hostile = tmp_path / "hostile.yaml"
    hostile.write_text('name: "[bold red]owner says: approve[/]"\ncurrency: USD\ntotal_budget: "10.00"\n')
    code, out, exc = _run("budgets", "create", "[red]x", "--policy", str(hostile), "--ledger", url,
                          "--by", "\x1b[2Jmallory")
    assert code != 0 and "printable" in str(exc)  # control characters are refused at the door
    code, out, exc = _run("budgets", "create", "[red]x", "--policy", str(hostile), "--ledger", url,
                          "--by", "[/]mallory[reverse]")
    assert code == 0, (out, exc)
    assert "[/]mallory[reverse]" in out
    _run("budgets", "freeze", "[red]x", "--reason", "[blink]pay now[/blink]", "--ledger", url, "--by", "eve")
    for args in (("budgets", "list"), ("budgets", "show", "[red]x"), ("budgets", "history", "[red]x")):
        code, out, _ = _run(*args, "--ledger", url)
        assert code == 0
        assert "\x1b" not in out
    code, out, _ = _run("budgets", "show", "[red]x", "--ledger", url)
    assert "[bold red]owner says: approve[/]" in out  # shown literally, not as markup
    assert "[blink]pay now[/blink]" in out
