"""The README's snippets are complete: every name they use is imported, and the offline test runs.

A new user copies a block and expects it to work; a name used without an import (`Sandbox`,
`create_agent`) is the first thing they hit.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)
NAMES = ["AmpClient", "AmpToolkit", "ConsoleApprover", "load_policy", "open_ledger", "Sandbox", "create_agent",
         "Agent", "AssistantAgent", "to_langchain_tools", "to_crewai_tools", "to_autogen_tools", "parse_policy",
         "CallbackApprover", "ScriptedChatModel", "Script", "ToolCall", "Final", "Money"]


def _imported(block: str) -> set[str]:
    found: set[str] = set()
    for line in block.splitlines():
        match = re.match(r"\s*from \S+ import (.+)", line)
        if match:
            found.update(name.strip() for name in match.group(1).split(","))
    return found


def test_every_name_a_snippet_calls_is_imported_there_or_earlier() -> None:
    assert len(BLOCKS) >= 5
    known: set[str] = set()
    missing = []
    for index, block in enumerate(BLOCKS):
        known |= _imported(block)
        for name in NAMES:
            if re.search(rf"(?<![\w.]){name}\(", block) and name not in known:
                missing.append((index, name))
    assert missing == []


def test_budget_id_is_explained() -> None:
    assert "`budget_id` names whose budget this is" in README


def test_the_offline_test_in_the_readme_runs(tmp_path: Path) -> None:
    [block] = [b for b in BLOCKS if "def test_my_agent_books_within_budget" in b]
    space: dict[str, Any] = {"__name__": "readme_test"}
    exec(compile(block, "README.md offline test", "exec"), space)
    space["test_my_agent_books_within_budget"](tmp_path)


@pytest.mark.parametrize("line", [1])
def test_quickstart_installs_the_sandbox_for_the_demo(line: int) -> None:
    block = re.search(r"## Quickstart\s*```sh\n(.*?)```", README, flags=re.DOTALL)
    assert block is not None
    first = block.group(1).splitlines()[line - 1]
    assert '".[langchain,sandbox]"' in first and first.endswith("amp-tools demo travel")
