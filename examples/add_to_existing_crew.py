"""Give a CrewAI crew you already have the power to buy, in three lines.

The crew below existed before amp-tools: a researcher (with a notes tool) picks a flight and a
writer turns the research into a trip note. The three lines marked ``# + amp-tools`` add
purchasing: import the adapter, import the session setup, hand the session's tools to the
researcher. Nothing else in the crew changes; the budget policy, the ledger and the person's
approvals live in the AMP session, never in the crew or the model.

`amp_session` is the one-time setup every framework shares (examples/README.md shows the same
three lines for LangChain and AutoGen). Here it runs on the embedded sandbox with scripted
models, so the script works offline:

    python examples/add_to_existing_crew.py
"""

from __future__ import annotations

import amp_examples.offline_env  # noqa: F401  (CrewAI telemetry off; must come before crewai)

# isort: split
from functools import partial

from crewai import LLM, Agent, BaseLLM, Crew, Process, Task
from crewai.crews.crew_output import CrewOutput
from crewai.tools import BaseTool, tool

from amp_crewai import to_crewai_tools  # + amp-tools
from amp_examples.scripted import Final, Script, ToolCall
from amp_examples.scripted.buyer import buy_flight
from amp_examples.scripted.crewai_model import ScriptedCrewLLM
from amp_examples.scripted.script import Conversation, Step
from amp_examples.session import amp_session  # + amp-tools

__all__ = ["POLICY", "build_crew", "main", "scripted_researcher", "scripted_writer"]

POLICY = "examples/policies/travel_demo.yaml"


@tool("destination_notes")
def destination_notes(city: str) -> str:
    """Short travel notes about a city (the crew's own tool, from before amp-tools)."""
    return f"{city}: arrive before noon, the airport train takes 28 minutes to the centre."


# ---------------------------------------------------------------------- the existing crew
def build_crew(researcher_llm: BaseLLM | LLM, writer_llm: BaseLLM | LLM) -> Crew:
    research_tools: list[BaseTool] = [destination_notes]
    research_tools += to_crewai_tools(amp_session(POLICY).specs())  # + amp-tools
    researcher = Agent(role="Travel researcher", goal="Find and secure the best flight for the trip",
                       backstory="Knows Southeast Asian routes.", llm=researcher_llm, tools=research_tools,
                       allow_delegation=False)
    writer = Agent(role="Trip writer", goal="Write a short, clear trip note", backstory="Writes for busy people.",
                   llm=writer_llm, allow_delegation=False)
    research = Task(description="Find a flight from Singapore to Kuala Lumpur for {traveller} and book it.",
                    expected_output="The flight booked and what it cost.", agent=researcher)
    note = Task(description="Write {traveller}'s trip note from the research.", expected_output="A trip note.",
                agent=writer, context=[research])
    return Crew(agents=[researcher, writer], tasks=[research, note], process=Process.sequential)


# ---------------------------------------------------------------------- offline stand-ins for the two models
def scripted_researcher() -> ScriptedCrewLLM:
    """Reads the city notes with the crew's own tool, then buys the flight with the AMP tools."""
    notes = ToolCall("destination_notes", {"city": "Kuala Lumpur"})
    return ScriptedCrewLLM(Script(partial(buy_flight, before=[notes])))


def scripted_writer() -> ScriptedCrewLLM:
    def write(conversation: Conversation) -> Step:
        research = next(str(m["content"]) for m in conversation if m.get("role") == "user")
        start = research.find("Booked ")
        booked = research[start:].split(" (transaction")[0] if start >= 0 else "nothing was booked"
        return Final(f"Trip note: {booked}. Have a good trip!")

    return ScriptedCrewLLM(Script(write))


def main() -> int:
    crew = build_crew(scripted_researcher(), scripted_writer())
    out = crew.kickoff(inputs={"traveller": "Mei"})
    assert isinstance(out, CrewOutput)  # not streaming
    for task in out.tasks_output:
        print(f"[{task.agent.strip()}] {task.raw}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
