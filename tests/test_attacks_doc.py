"""docs/ATTACKS.md stays true: numbered once each, and every test it names exists.

A row names its tests as `tests/path.py::test_name`, or `::test_name` for another test of the
file named just before it in the same cell.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "ATTACKS.md").read_text(encoding="utf-8")
ROWS = [line for line in DOC.splitlines() if re.match(r"^\|\s*\d+\s*\|", line)]


def _tests_named(row: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    current = ""
    for path, name in re.findall(r"`(tests/[\w/]+\.py)?::(\w+)`", row):
        current = path or current
        assert current, f"a test named without its file: {row}"
        found.append((current, name))
    return found


def test_rows_are_numbered_once_in_order() -> None:
    numbers = [int(row.split("|")[1]) for row in ROWS]
    assert numbers == list(range(1, len(numbers) + 1))


def test_every_row_names_an_invariant_and_a_test_that_exists() -> None:
    missing = []
    for row in ROWS:
        cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
        assert len(cells) == 4 and all(cells), f"a row needs attack, invariant and test: {row}"
        tests = _tests_named(cells[3])
        assert tests, f"row {cells[0]} names no test"
        for path, name in tests:
            source = ROOT / path
            if not source.is_file() or not re.search(rf"^(async )?def {name}\(", source.read_text(encoding="utf-8"),
                                                     re.M):
                missing.append(f"{cells[0]}: {path}::{name}")
    assert missing == []
