"""The owner's commands sign what they decide; `audit verify --owner-key` checks the signatures."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from amp_tools.approvals import ApprovalStore
from amp_tools.approvals.request import make_request
from amp_tools.cli import app
from amp_tools.ledger import open_ledger
from amp_tools.money import Money
from amp_tools.owner import OwnerKey
from amp_tools.owner.keys import default_owner_key_path
from amp_tools.policy import BudgetPolicy, SpendIntent, Verdict


def _intent(amount: str, checkout: str) -> SpendIntent:
    from datetime import UTC, datetime

    money = Money.parse(amount, "USD")
    return SpendIntent("pay", "shop", "Shop", "5812", money, money, None, (), False, checkout,
                       datetime(2026, 1, 1, tzinfo=UTC))


def test_owner_commands_sign_and_audit_verify_checks_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMP_TOOLS_HOME", str(tmp_path / "home"))
    db = str(tmp_path / "ledger.db")
    monkeypatch.setenv("AMP_TOOLS_LEDGER_URL", db)
    runner = CliRunner()
    assert runner.invoke(app, ["owner", "init"]).exit_code == 0
    pub = tmp_path / "owner.pub.json"
    pub.write_text(json.dumps(OwnerKey.load(default_owner_key_path()).public_jwk()))
    led = open_ledger(db)
    led.create_budget_sync("team", BudgetPolicy.model_validate({"name": "team", "currency": "USD",
                                                                "total_budget": "100.00"}), by="owner")
    verdict = Verdict(approval_reasons=("above",), budget_left=Money.parse("1.00", "USD"), checked_rules=("x",))
    agent_side = ApprovalStore(led, budget_id="team")
    first = agent_side.create(make_request(replace(_intent("20.00", "c1")), verdict, budget_id="team",
                                                     ttl=timedelta(days=1)))
    second = agent_side.create(make_request(replace(_intent("30.00", "c2")), verdict, budget_id="team",
                                                     ttl=timedelta(days=1)))
    led.close_sync()

    unsigned = runner.invoke(app, ["audit", "verify", "--owner-key", str(pub)])
    assert unsigned.exit_code == 1 and "is not signed by the owner key" in _flat(unsigned.output)
    signed = runner.invoke(app, ["owner", "sign-policy", "team", "--yes"])
    assert signed.exit_code == 0, signed.output
    assert '"total_budget": "100.00"' in signed.stdout
    assert runner.invoke(app, ["approvals", "approve", first.id, "--by", "alice"]).exit_code == 0
    ok = runner.invoke(app, ["audit", "verify", "--owner-key", str(pub)])
    assert ok.exit_code == 0, ok.output
    assert "owner signatures verified" in _flat(ok.output)

    # Approved by the ledger's own code on a host without the owner key: audited, but not signed.
    led = open_ledger(db)
    ApprovalStore(led, budget_id="team").approve(second.id, "mallory")
    rows = led.run_read_sync(_signatures)
    led.close_sync()
    assert rows == [(first.id, "approve")]
    assert runner.invoke(app, ["audit", "verify"]).exit_code == 0
    caught = runner.invoke(app, ["audit", "verify", "--owner-key", str(pub)])
    assert caught.exit_code == 1 and f"the grant of approval {second.id!r}" in _flat(caught.output)


def _flat(text: str) -> str:
    return " ".join(text.split())


def _signatures():  # type: ignore[no-untyped-def]
    from amp_tools.ledger._sql import Q

    rows = yield Q("SELECT approval_id, decision FROM approval_signatures ORDER BY approval_id")
    return [(str(r[0]), str(r[1])) for r in rows]


def test_budgets_commands_sign_with_the_owner_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMP_TOOLS_HOME", str(tmp_path / "home"))
    db = str(tmp_path / "ledger.db")
    monkeypatch.setenv("AMP_TOOLS_LEDGER_URL", db)
    policy = tmp_path / "team.yaml"
    policy.write_text('name: team\ncurrency: USD\ntotal_budget: "100.00"\n')
    runner = CliRunner()
    assert runner.invoke(app, ["owner", "init"]).exit_code == 0
    key = OwnerKey.load(default_owner_key_path())
    pub = tmp_path / "owner.pub.json"
    pub.write_text(json.dumps(key.public_jwk()))
    created = runner.invoke(app, ["budgets", "create", "team", "--policy", str(policy), "--by", "alice"])
    assert created.exit_code == 0, created.output
    assert f"signed policy version 1 with the owner key {key.kid}" in _flat(created.output)
    policy.write_text('name: team\ncurrency: USD\ntotal_budget: "80.00"\n')
    changed = runner.invoke(app, ["budgets", "set-policy", "team", "--policy", str(policy), "--yes", "--by", "alice"])
    assert changed.exit_code == 0 and "signed policy version 2" in _flat(changed.output)
    for command in (["budgets", "freeze", "team", "--reason", "trip over", "--by", "alice"],
                    ["budgets", "unfreeze", "team", "--by", "alice"]):
        assert runner.invoke(app, command).exit_code == 0
    ok = runner.invoke(app, ["audit", "verify", "--owner-key", str(pub)])
    assert ok.exit_code == 0, ok.output
    led = open_ledger(db)
    stored = led.get_budget_sync("team")
    led.close_sync()
    assert stored is not None and stored.policy_version == 2 and stored.signed and stored.control_signature
    # Another key pinned: every one of those signatures is refused.
    other = tmp_path / "other.pub.json"
    other.write_text(json.dumps(OwnerKey.generate().public_jwk()))
    bad = runner.invoke(app, ["audit", "verify", "--owner-key", str(other)])
    assert bad.exit_code == 1 and "has an owner signature that does not hold" in _flat(bad.output)
