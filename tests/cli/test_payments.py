"""`amp-tools payments unresolved` and `resolve`: a person settles what recovery could not, audited."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from amp_tools.clock import ManualClock
from amp_tools.ledger import open_ledger
from amp_tools.payments import Lifecycle, PaymentState, state_of
from tests.ledger._ledger_helpers import intent, policy

CLI = [str(Path(sys.executable).parent / "amp-tools")]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60)


async def test_unresolved_payments_are_listed_and_resolved_by_a_person(tmp_path: Path) -> None:
    path = str(tmp_path / "ledger.db")
    clock = ManualClock(datetime.now(UTC) - timedelta(hours=1))  # the dead owner's leases ran out long ago
    ledger = open_ledger(path, clock=clock)
    life = Lifecycle(ledger, clock=clock, owner="gone-host|1|1", lease=timedelta(seconds=1))
    ids = []
    for n in range(3):
        res = await life.reserve(intent("7.00", checkout=f"co-{n}"), policy(), budget_id="family", key=f"k{n}")
        await life.sending(res.id)
        ids.append(res.id)
    await life.unknown(ids[2], "answer lost")
    await ledger.close()

    listed = _run("payments", "unresolved", "--ledger", path, "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["id"], r["state"]) for r in rows] == [(ids[0], "sending"), (ids[1], "sending"), (ids[2], "unknown")]

    refused = _run("payments", "resolve", str(ids[0]), "--paid", "--by", "alice", "--ledger", path)
    assert refused.returncode == 2 and "transaction id" in refused.stderr
    paid = _run("payments", "resolve", str(ids[0]), "--paid", "--transaction", "TX-77", "--by", "alice",
                "--reason", "on the wallet statement", "--ledger", path)
    assert paid.returncode == 0, paid.stderr
    assert "resolved as paid (transaction TX-77)" in paid.stdout
    not_paid = _run("payments", "resolve", str(ids[2]), "--not-paid", "--by", "alice", "--reason",
                    "the merchant has no such order", "--ledger", path)
    assert not_paid.returncode == 0 and "not paid (released)" in not_paid.stdout

    again = open_ledger(path)
    try:
        first, third = await again.get(ids[0]), await again.get(ids[2])
        assert (state_of(first), first.external_ref) == (PaymentState.COMMITTED, "TX-77")
        assert state_of(third) == PaymentState.RELEASED and "alice" in (third.reason or "")
        resolutions = [r.payload for r in await again.audit.records() if r.kind == "resolution"]
        assert [(p["entry_id"], p["paid"], p["by"]) for p in resolutions] == [(ids[0], True, "alice"),
                                                                                 (ids[2], False, "alice")]
        assert (await again.audit.verify()).ok
        report = await again.usage_report(policy(), "family")
        assert report["total"]["used"]["amount"] == "14.00"  # one resolved paid + one still held
    finally:
        await again.close()
    left = json.loads(_run("payments", "unresolved", "--ledger", path, "--json").stdout)
    assert [r["id"] for r in left] == [ids[1]]
