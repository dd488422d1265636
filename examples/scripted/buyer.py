"""A small reactive script that buys the cheapest Singapore -> Kuala Lumpur flight, for the short examples."""

from __future__ import annotations

import json

from amp_examples.scripted.script import Conversation, Final, Script, Step, ToolCall, tool_results

__all__ = ["buy_flight", "flight_buyer"]


def buy_flight(conversation: Conversation, *, before: list[ToolCall] | None = None) -> Step:
    """search_offers -> checkout -> pay -> a one-line summary; `before` runs the agent's own calls first."""
    done = {str(m.get("name")): m for m in tool_results(conversation)}
    for call in before or []:
        if call.name not in done:
            return call
    if "search_offers" not in done:
        return ToolCall("search_offers", {"query": "flight Kuala Lumpur", "category": "flight"})
    if "checkout" not in done:
        offers = json.loads(str(done["search_offers"]["content"]))["offers"]
        flight = next(o for o in offers if "SIN->KUL" in o["name"])
        return ToolCall("checkout", {"offer_id": flight["offer_id"], "quantity": 1})
    if "pay" not in done:
        return ToolCall("pay", {"checkout_id": json.loads(str(done["checkout"]["content"]))["checkout_id"]})
    if done["pay"].get("is_error"):
        return Final(f"Not booked: {done['pay']['content']}")
    paid = json.loads(str(done["pay"]["content"]))
    own = "".join(f" {done[call.name]['content']}" for call in before or [])  # what the agent's own tools said
    return Final(f"Booked {paid['merchant']}: paid {paid['amount']['amount']} {paid['amount']['currency']} "
                 f"(transaction {paid['transaction_id']}).{own}")


def flight_buyer() -> Script:
    """A fresh script that buys one flight (the scripted models take a `Script`)."""
    return Script(buy_flight)
