"""CrewAI adapter: amp-tools `ToolSpec`s as CrewAI tools.

Translation only. CrewAI runs the sync `_run` in a worker thread (also under `kickoff_async`),
so `_run` calls `spec.invoke`. A core `ToolError` becomes a `ToolFailure`: the model reads the
message and the failure lands in `TaskOutput.tool_failures`. Per-run state (approver, ledger,
run id) lives in the spec's toolkit behind each tool instance, never in process-global hooks.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from crewai.tools import BaseTool, ToolFailure
from pydantic import ConfigDict, Field

from amp_tools.errors import ToolError
from amp_tools.tools.spec import ToolSpec

__all__ = ["AmpCrewAITool", "to_crewai_tools"]


def _never_cache(_args: Any = None, _result: Any = None) -> bool:
    return False


class AmpCrewAITool(BaseTool):
    """One amp-tools spec as a CrewAI tool; the result is a JSON string."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    spec: ToolSpec = Field(exclude=True)
    # Never cached, even in a Crew(cache=True): budget, order and mandate status change with every
    # payment, and a cached APPROVAL_PENDING would hide the person's later approval from a retry.
    cache_function: Callable[..., bool] = Field(default=_never_cache, exclude=True)

    def _run(self, **kwargs: Any) -> Any:
        try:
            return json.dumps(self.spec.invoke(kwargs), ensure_ascii=False)
        except ToolError as exc:
            return ToolFailure(message=str(exc), code=exc.code, details=exc.details)


def to_crewai_tools(specs: Iterable[ToolSpec]) -> list[BaseTool]:
    """One `AmpCrewAITool` per spec, named, described and typed by the spec."""
    return [AmpCrewAITool(name=s.name, description=s.description, args_schema=s.args_model, spec=s) for s in specs]
