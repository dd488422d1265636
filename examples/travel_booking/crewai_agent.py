"""The travel agent as a one-agent CrewAI crew over the amp-tools CrewAI tools."""

from __future__ import annotations

import asyncio
from typing import Any

from crewai import Agent, Crew, Process, Task

from amp_crewai import to_crewai_tools
from amp_tools.toolkit import ToolSpec


async def run_agent(specs: list[ToolSpec], model: Any, system_prompt: str, request: str) -> str:
    agent = Agent(role="Travel booking agent", goal="Book the user's trip within the budget policy",
                  backstory=system_prompt, llm=model, tools=to_crewai_tools(specs), max_iter=40,
                  allow_delegation=False, verbose=False)
    task = Task(description=request, expected_output="The itinerary, the amounts paid and the budget left.",
                agent=agent)
    crew = Crew(agents=[agent], tasks=[task], process=Process.sequential, verbose=False)
    # CrewAI runs tools synchronously in worker threads; keep this event loop free meanwhile.
    output = await asyncio.to_thread(crew.kickoff)
    return str(output.raw)


def scripted_model(script: Any) -> Any:
    from amp_examples.scripted.crewai_model import ScriptedCrewLLM

    return ScriptedCrewLLM(script)
