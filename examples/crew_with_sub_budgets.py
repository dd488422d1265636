"""A CrewAI crew whose agents each spend from their own sub-budget inside the crew's budget.

Two buying agents (a flight booker and a hotel booker) and a researcher share one trip budget
(examples/policies/crew_budgets.yaml): the crew may spend 700 SGD in all, the flight booker 300,
the hotel booker 400 (hotels only), the researcher 20. Each agent gets the AMP tools of its own
sub-budget from the crew's toolkit with ``crew_toolkit.for_agent(name)``; the adapter is the usual
one. Every payment is checked against the agent's limits and the crew's in one ledger transaction,
so agents running at once can never overspend either.

Offline with scripted models on the embedded sandbox:

    python examples/crew_with_sub_budgets.py
"""

from __future__ import annotations

import amp_examples.offline_env  # noqa: F401  (CrewAI telemetry off; must come before crewai)

# isort: split
import json
from collections.abc import Callable

from crewai import LLM, Agent, BaseLLM, Crew, Process, Task
from crewai.crews.crew_output import CrewOutput
from crewai.tools import BaseTool

from amp_crewai import to_crewai_tools
from amp_examples.scripted import Final, Script, ToolCall
from amp_examples.scripted.crewai_model import ScriptedCrewLLM
from amp_examples.scripted.script import Conversation, Step, tool_results
from amp_examples.session import amp_session
from amp_tools.toolkit import AmpToolkit

__all__ = ["POLICY", "build_crew", "buyer", "main", "researcher"]

POLICY = "examples/policies/crew_budgets.yaml"


def build_crew(crew_toolkit: AmpToolkit, models: dict[str, BaseLLM | LLM]) -> Crew:
    """The crew; each agent's tools come from its own sub-budget of the crew's toolkit."""
    def tools(name: str) -> list[BaseTool]:
        return list(to_crewai_tools(crew_toolkit.for_agent(name).specs()))

    flights = Agent(role="Flight booker", goal="Book the flight", backstory="Knows the airlines.",
                    llm=models["flight_booker"], tools=tools("flight_booker"), allow_delegation=False)
    hotels = Agent(role="Hotel booker", goal="Book the hotel", backstory="Knows the hotels.",
                   llm=models["hotel_booker"], tools=tools("hotel_booker"), allow_delegation=False)
    research = Agent(role="Researcher", goal="Report what the crew has left", backstory="Keeps the books.",
                     llm=models["researcher"], tools=tools("researcher"), allow_delegation=False)
    return Crew(agents=[flights, hotels, research], process=Process.sequential, tasks=[
        Task(description="Book a flight from Singapore to Kuala Lumpur.", expected_output="The flight booked.",
             agent=flights),
        Task(description="Book a hotel night, the best room the budget allows.",
             expected_output="The hotel booked.", agent=hotels),
        Task(description="Report what the crew and you may still spend.", expected_output="The budget left.",
             agent=research)])


# ---------------------------------------------------------------------- offline stand-ins for the models
def buyer(query: str, category: str, wishes: list[str]) -> Callable[[Conversation], Step]:
    """Search, then try the wished-for offers in order until one is paid (a refusal moves to the next)."""
    def step(conversation: Conversation) -> Step:
        results = tool_results(conversation)
        if not results:
            return ToolCall("search_offers", {"query": query, "category": category})
        offers = json.loads(str(results[0]["content"]))["offers"]
        tried = sum(1 for r in results if r.get("name") == "pay")
        refused = [str(r["content"]).split("[policy: ")[-1].split("]")[0] for r in results
                   if r.get("name") == "pay" and r.get("is_error")]
        last = results[-1]
        if last.get("name") == "pay" and not last.get("is_error"):
            paid = json.loads(str(last["content"]))
            return Final(f"Booked {paid['merchant']}: paid {paid['amount']['amount']} {paid['amount']['currency']}"
                         + (f" (refused first by {', '.join(refused)})" if refused else "") + ".")
        if last.get("name") == "checkout":
            return ToolCall("pay", {"checkout_id": json.loads(str(last["content"]))["checkout_id"]})
        if tried >= len(wishes):
            return Final(f"Nothing booked: {last.get('content')}")
        offer = next(o for o in offers if wishes[tried] in o["name"])
        return ToolCall("checkout", {"offer_id": offer["offer_id"], "quantity": 1})

    return step


def researcher(conversation: Conversation) -> Step:
    results = tool_results(conversation)
    if not results:
        return ToolCall("budget_status", {})
    status = json.loads(str(results[-1]["content"]))
    crew = status["parents"][0]["total"]
    return Final(f"The crew has spent {crew['used']['amount']} of {crew['limit']['amount']} {status['currency']}; "
                 f"I may spend {status['can_spend']['amount']}.")


def scripted_models() -> dict[str, BaseLLM | LLM]:
    return {"flight_booker": ScriptedCrewLLM(Script(buyer("flight Kuala Lumpur", "flight", ["SIN->KUL 19:00"]))),
            "hotel_booker": ScriptedCrewLLM(Script(buyer("hotel", "hotel", ["Deluxe king", "Superior room"]))),
            "researcher": ScriptedCrewLLM(Script(researcher))}


def main() -> int:
    toolkit = amp_session(POLICY)
    out = build_crew(toolkit, scripted_models()).kickoff()
    assert isinstance(out, CrewOutput)  # not streaming
    for task in out.tasks_output:
        print(f"[{task.agent.strip()}] {task.raw}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
