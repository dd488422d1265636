"""Scripted offline models for tests and demos: one neutral script, one model class per framework.

`script` is framework-free; `langchain_model`, `autogen_model`, `crewai_model` and `agent_framework_model` import
their framework, so import the one you need. `real.real_model(framework)` builds a real
OpenAI-compatible model from the environment instead.
"""

from __future__ import annotations

from amp_examples.scripted.script import Final, Script, Step, ToolCall, last_tool_result, tool_results

__all__ = ["Final", "Script", "Step", "ToolCall", "last_tool_result", "tool_results"]
