"""``ledger show`` lists the budgets when none is named, refuses an unknown one (exit 1), and every
approvals command reads the ledger given by ``--ledger``; on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from amp_tools.cli import main
from amp_tools.cli._ledger import list_budgets
from amp_tools.money import Money
from tests.ledger._ledger_helpers import PG_URL, intent, open_backend, policy


def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str, str]:
    """`amp-tools ARGS` in this process, through `main` (its one-line errors and exit codes)."""
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.delenv("AMP_TOOLS_LEDGER_URL", raising=False)
    monkeypatch.setattr("sys.argv", ["amp-tools", *args])
    try:
        main()
        code: Any = 0
    except SystemExit as done:
        code = done.code
    captured = capsys.readouterr()
    return int(code or 0), captured.out, captured.err


def url(backend: str, target: str) -> str:
    """What a person passes to --ledger for this test's ledger (a file, or the schema in the URL)."""
    return target if backend == "sqlite" else f"{PG_URL}?options=-csearch_path%3D{target}"


async def _seed(backend: str, target: str) -> None:
    led = open_backend(backend, target)
    try:
        for budget, amount, key in (("trip-a", "12.50", "k1"), ("trip-a", "7.50", "k2"), ("trip-b", "3.00", "k3")):
            e = await led.reserve(intent(amount, checkout=key), policy(), budget_id=budget, idempotency_key=key)
            await led.commit(e.id, external_ref=f"tx-{key}")
    finally:
        await led.close()


async def test_ledger_show_lists_budgets_then_one_budget_then_refuses_an_unknown_one(
        backend: str, target: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    await _seed(backend, target)
    target = url(backend, target)
    budgets = {b.budget_id: (b.used, b.count) for b in list_budgets(target)}
    assert budgets == {"trip-a": (Money(2000, "USD"), 2), "trip-b": (Money(300, "USD"), 1)}

    code, out, _ = run(capsys, monkeypatch, "ledger", "show", "--ledger", target)
    assert code == 0 and "ledger: 2 budgets" in out
    assert "trip-a" in out and "20.00 USD" in out and "trip-b" in out and "3.00 USD" in out
    assert "show one: amp-tools ledger show --budget trip-a" in out

    code, out, _ = run(capsys, monkeypatch, "ledger", "show", "--ledger", target, "--budget", "trip-a")
    assert code == 0 and "2 entries, budget trip-a" in out and "12.50 USD" in out and "3.00 USD" not in out

    code, out, err = run(capsys, monkeypatch, "ledger", "show", "--ledger", target, "--budget", "nope")
    assert code == 1 and out == ""
    assert "no budget 'nope' in the ledger at" in err and "amp-tools ledger show` lists them" in err


async def test_approvals_commands_read_the_ledger_given(backend: str, target: str,
                                                        capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("AMP_TOOLS_HOME", str(tmp_path / "home"))  # the default ledger stays untouched
    await _seed(backend, target)
    target = url(backend, target)
    code, out, _ = run(capsys, monkeypatch, "approvals", "list", "--ledger", target, "--status", "all")
    assert code == 0 and "approvals (all)" in out
    code, _, err = run(capsys, monkeypatch, "approvals", "approve", "apr-missing", "--ledger", target)
    assert code == 2 and "approval 'apr-missing' does not exist" in err and "Traceback" not in err
    assert not (tmp_path / "home" / "ledger.db").exists()
