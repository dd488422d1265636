"""Issue 20, finding 7: a sandbox toolkit runs on real time unless a test passes a clock it controls.

The README's velocity snippet (one payment per 5 s) used to refuse a second payment 8 s later: the
sandbox's clock stood still at the process start.
"""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from amp_tools.amp.keys import AgentKey
from amp_tools.clock import ManualClock
from amp_tools.errors import PolicyViolation
from amp_tools.ledger import open_ledger
from amp_tools.policy import parse_policy
from amp_tools.sandbox import Sandbox
from amp_tools.toolkit import AmpToolkit

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
[SNIPPET] = [b for b in re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL) if '"per": "5s"' in b]


def _readme_policy() -> Any:
    [text] = re.findall(r"parse_policy\((\{.*\})\)", SNIPPET)
    return parse_policy(ast.literal_eval(text))  # the README's own policy literal


def test_the_default_sandbox_toolkit_reads_the_wall_clock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMP_TOOLS_HOME", str(tmp_path))  # the snippet's default ledger and key land here
    monkeypatch.delenv("AMP_TOOLS_LEDGER_URL", raising=False)
    space: dict[str, Any] = {}
    exec(compile(SNIPPET, "README.md velocity snippet", "exec"), space)
    toolkit = space["toolkit"]
    try:
        before = datetime.now(UTC)
        seen = toolkit.clock.now()
        after = datetime.now(UTC)
        assert before <= seen <= after
        assert not isinstance(toolkit.clock, ManualClock)
        assert before <= toolkit.guard.clock.now()
    finally:
        toolkit.ledger.close_sync()


async def test_the_readme_velocity_rule_pays_again_six_seconds_later(tmp_path: Path) -> None:
    clock = ManualClock()
    sandbox = Sandbox(clock=clock)
    ledger = open_ledger(tmp_path / "ledger.db", clock=clock)
    toolkit = AmpToolkit.for_sandbox(sandbox, _readme_policy(), ledger=ledger, budget_id="velocity-demo",
                                     agent_key=AgentKey.generate())
    tools = {s.name: s for s in toolkit.specs()}

    async def buy() -> Any:
        await tools["search_offers"].ainvoke({"query": "esim", "merchant_ids": ["SUNNY-TOURS"]})
        ck = await tools["checkout"].ainvoke({"offer_id": "SUNNY-TOURS:SUN-ESIM-ASIA"})
        return await tools["pay"].ainvoke({"checkout_id": ck["checkout_id"]})

    try:
        assert (await buy())["status"] == "paid"
        clock.advance(seconds=4)
        with pytest.raises(PolicyViolation) as refused:
            await buy()
        assert refused.value.rule == "velocity"
        clock.advance(seconds=2)  # six seconds after the first payment
        assert (await buy())["status"] == "paid"
        assert [e.status for e in await ledger.entries("velocity-demo")].count("committed") == 2
    finally:
        await toolkit.aclose()
        await ledger.close()
