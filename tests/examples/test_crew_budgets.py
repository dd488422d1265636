"""A budget per agent, in every framework: examples/crew_with_sub_budgets.py (CrewAI) runs as a
script, and the README's AutoGen team and LangGraph graph blocks run as written; each agent's
payment lands in its own sub-budget and counts toward the crew's."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from amp_tools.ledger import open_ledger
from amp_tools.money import Money

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "examples" / "README.md"
CREW = ROOT / "examples" / "crew_with_sub_budgets.py"
FLIGHT = ("SKYLARK-AIR", "committed", Money.parse("149.00", "SGD"))
HOTEL = ("KL-GRAND-HOTEL", "committed", Money.parse("580.00", "MYR"))


def _rows(ledger_url: str) -> dict[str, list[tuple[str, str, Money]]]:
    """Entries by agent (the last part of the budget id), and the crew's figure."""
    async def read() -> dict[str, list[tuple[str, str, Money]]]:
        ledger = open_ledger(ledger_url)
        try:
            out: dict[str, list[tuple[str, str, Money]]] = {}
            for e in reversed(await ledger.entries()):
                assert len(e.parents) == 1 and e.budget_id.startswith(e.parents[0] + "/")
                out.setdefault(e.budget_id.rsplit("/", 1)[-1], []).append((e.merchant_id, e.status, e.amount))
            return out
        finally:
            await ledger.close()

    return asyncio.run(read())


def _team_blocks() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    return [block for block in blocks if "for_agent(" in block]


def test_crewai_crew_with_a_sub_budget_per_agent_runs_as_a_script(tmp_path: Path) -> None:
    ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    done = subprocess.run([sys.executable, str(CREW)], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "AMP_TOOLS_LEDGER_URL": ledger_url}, timeout=180, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines() == [
        "[Flight booker] Booked Skylark Air: paid 149.00 SGD.",
        "[Hotel booker] Booked KL Grand Hotel: paid 580.00 MYR (refused first by agents.hotel_booker.total_budget).",
        "[Researcher] The crew has spent 313.60 of 700.00 SGD; I may spend 20.00."]
    assert _rows(ledger_url) == {"flight_booker": [FLIGHT], "hotel_booker": [HOTEL]}


@pytest.mark.parametrize("index", [0, 1], ids=["autogen-team", "langgraph-graph"])
def test_readme_team_block_runs_offline_with_a_budget_per_agent(index: int, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = _team_blocks()
    assert len(blocks) == 2 and "RoundRobinGroupChat" in blocks[0] and "StateGraph" in blocks[1]
    ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    monkeypatch.setenv("AMP_TOOLS_LEDGER_URL", ledger_url)
    monkeypatch.chdir(ROOT)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(blocks[index], f"README.md team block {index}", "exec"), {"__name__": "readme"})
    assert printed.getvalue().splitlines() == [
        "[flight_booker] Booked Skylark Air: paid 149.00 SGD.",
        "[hotel_booker] Booked KL Grand Hotel: paid 580.00 MYR (refused first by agents.hotel_booker.total_budget)."]
    assert _rows(ledger_url) == {"flight_booker": [FLIGHT], "hotel_booker": [HOTEL]}
