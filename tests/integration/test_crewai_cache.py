"""CrewAI's opt-in tool cache (`Crew(cache=True)`) must never answer for the AMP tools.

Status tools change with every payment; a cached answer would show a stale budget (and a cached
APPROVAL_PENDING would hide the person's later approval from the agent's retry).
"""

from __future__ import annotations

import asyncio

from amp_examples.scripted import Final, ToolCall
from tests.integration._scenarios import Seen, Shop, crew_for, offer, plan_script, policy


async def test_cached_crew_still_sees_the_budget_move(shop: Shop) -> None:
    tk = shop.toolkit(policy())
    script = plan_script([
        lambda s: ToolCall("budget_status", {}),
        lambda s: ToolCall("search_offers", {"query": "flight Kuala Lumpur", "category": "flight"}),
        lambda s: ToolCall("checkout", {"offer_id": offer(s, "SIN->KUL 19:00"), "quantity": 1}),
        lambda s: ToolCall("pay", {"checkout_id": s.ok("checkout")[0]["checkout_id"]}),
        lambda s: ToolCall("budget_status", {}),
        lambda s: Final("done")])
    crew = crew_for(tk, script)
    crew.cache = True  # CrewAI's opt-in: identical tool calls are answered from its cache
    for agent in crew.agents:
        agent.cache = True
    await asyncio.to_thread(crew.kickoff)
    used = [b["total"]["used"]["amount"] for b in Seen(script.seen[-1]).ok("budget_status")]
    assert used == ["0.00", "110.26"]
