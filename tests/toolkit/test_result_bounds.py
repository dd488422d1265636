"""Every tool result is bounded: a long session cannot flood the model's context.

`budget_status` after fifty mandates shows the most recent few and a count of the rest; the
generic cap in `ToolSpec` shortens any result that is still too large.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_toolkit import Harness

from amp_tools.toolkit import ToolSpec
from amp_tools.toolkit._bound import MAX_RESULT_CHARS, bound_result, first_of
from amp_tools.toolkit._reporting import BudgetStatusArgs


async def test_budget_status_after_fifty_mandates_shows_five_and_counts_the_rest(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    await h.call("discover_merchants")
    ids = []
    for i in range(50):
        made = await h.call("request_mandate", purpose=f"trip number {i}", budget="10.00", expires_at=h.until())
        assert made["status"] == "ACTIVE"
        ids.append(made["mandate_id"])
    status = await h.call("budget_status")
    text = json.dumps(status)
    assert len(text) < 4000, len(text)
    assert [m["mandate_id"] for m in status["mandates"]] == ids[::-1][:5]  # the most recent first
    assert status["mandates_not_shown"].startswith("45 more active mandate(s)")
    assert status["total"]["left"] == {"amount": "1200.00", "currency": "USD"}
    await h.close()


def test_first_of_counts_what_it_leaves_out() -> None:
    assert first_of([1, 2, 3], 5, "x") == ([1, 2, 3], None)
    assert first_of(list(range(9)), 2, "offers") == ([0, 1], "7 more offers not shown")


def test_bound_result_leaves_small_results_alone_and_cuts_large_ones() -> None:
    small = {"status": "paid", "amount": {"amount": "45.00", "currency": "USD"}}
    assert bound_result(small) is small
    huge: dict[str, Any] = {"status": "ok", "offers": [{"name": "x" * 1000, "price": "1.00"}] * 500,
                            "note": "y" * 50_000}
    cut = bound_result(huge)
    assert len(json.dumps(cut)) <= MAX_RESULT_CHARS
    assert cut["status"] == "ok" and cut["offers"][-1] == "… 480 more not shown" and len(cut["offers"]) == 21
    assert cut["truncated"].startswith("this result was too large")


async def test_every_spec_applies_the_cap() -> None:
    async def flood(args: Any) -> dict[str, Any]:
        return {"items": list(range(100_000))}

    spec = ToolSpec("flood", "returns too much", BudgetStatusArgs, flood)
    for result in (await spec.ainvoke({}), spec.invoke({})):
        assert len(json.dumps(result)) <= MAX_RESULT_CHARS and result["items"][:3] == [0, 1, 2]
        assert result["items"][-1].endswith("more not shown")


@pytest.mark.parametrize("limit", [200, 1000])
def test_bound_result_honours_a_small_limit(limit: int) -> None:
    cut = bound_result({"a": ["z" * 300] * 50, "b": "q" * 5000}, limit)
    assert len(json.dumps(cut)) <= limit
