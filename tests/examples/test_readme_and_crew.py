"""examples/README.md's code blocks run as written, and add_to_existing_crew.py runs as a script.

Both add purchasing with the lines marked ``# + amp-tools``: at most three, counted here. The
ledger they write is pointed at a temporary file, where the payment is looked up afterwards.
"""

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
CREW = ROOT / "examples" / "add_to_existing_crew.py"
MARK = "# + amp-tools"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.DOTALL)


def _flight_rows(ledger_url: str) -> list[tuple[str, str, Money]]:
    async def read() -> list[tuple[str, str, Money]]:
        ledger = open_ledger(ledger_url)
        try:
            return [(e.merchant_id, e.status, e.amount) for e in await ledger.entries()]
        finally:
            await ledger.close()

    return asyncio.run(read())


def test_readme_has_one_python_block_per_framework_with_three_added_lines() -> None:
    blocks = [b for b in _blocks("python") if "for_agent(" not in b]  # not the team blocks (test_crew_budgets)
    assert len(blocks) == 3
    assert "create_agent" in blocks[0] and "AssistantAgent" in blocks[1] and "agent_framework" in blocks[2]
    for block in [*blocks, *_blocks("text")]:
        assert sum(MARK in line for line in block.splitlines()) == 3


@pytest.mark.parametrize("index", [0, 1, 2], ids=["langchain", "autogen", "agent-framework"])
def test_readme_block_runs_offline_and_buys_the_flight(index: int, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    monkeypatch.setenv("AMP_TOOLS_LEDGER_URL", ledger_url)
    monkeypatch.chdir(ROOT)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(_blocks("python")[index], f"README.md block {index}", "exec"), {"__name__": "readme"})
    assert printed.getvalue().startswith("Booked Skylark Air: paid 149.00 SGD (transaction ")
    assert _flight_rows(ledger_url) == [("SKYLARK-AIR", "committed", Money.parse("149.00", "SGD"))]


def test_existing_crew_gains_purchasing_in_three_lines_and_runs_as_a_script(tmp_path: Path) -> None:
    source = CREW.read_text().splitlines()
    added = [line.strip() for line in source if line.rstrip().endswith(MARK)]
    assert len(added) == 3
    assert added == [line.strip() for line in _blocks("text")[0].splitlines()]

    ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    env = {**os.environ, "AMP_TOOLS_LEDGER_URL": ledger_url}
    done = subprocess.run([sys.executable, str(CREW)], capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=180, check=False)
    assert done.returncode == 0, done.stderr
    researcher, writer = done.stdout.strip().splitlines()
    assert researcher.startswith("[Travel researcher] Booked Skylark Air: paid 149.00 SGD (transaction ")
    assert "airport train" in researcher  # the crew's own tool still works beside the AMP tools
    assert writer == "[Trip writer] Trip note: Booked Skylark Air: paid 149.00 SGD. Have a good trip!"
    assert _flight_rows(ledger_url) == [("SKYLARK-AIR", "committed", Money.parse("149.00", "SGD"))]
