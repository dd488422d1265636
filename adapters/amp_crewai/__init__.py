"""CrewAI adapter: amp-tools `ToolSpec`s as CrewAI tools.

Translation only. CrewAI runs the sync `_run` in a worker thread (also under `kickoff_async`),
so `_run` calls `spec.invoke`. A core `ToolError` becomes a `ToolFailure`: the model reads the
message and the failure lands in `TaskOutput.tool_failures`. Per-run state (approver, ledger,
run id) lives in the spec's toolkit behind each tool instance, never in process-global hooks.

`answer_from_feedback` turns a person's answer from a Flow's `@human_feedback` step (CrewAI 1.8+)
into the decision on a stored approval, so a Flow can wait for the person inside one run; see
`examples/crewai_approval_flow.py`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from crewai.tools import BaseTool, ToolFailure
from pydantic import ConfigDict, Field

from amp_tools.approvals import ApprovalRecord, ApprovalStore
from amp_tools.errors import ToolError
from amp_tools.toolkit import ToolSpec

__all__ = ["YES", "AmpCrewAITool", "answer_from_feedback", "to_crewai_tools"]

#: Answers that approve (the first word, any case); anything else, an empty answer included, declines.
YES = ("approve", "approved", "yes", "y")


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


def answer_from_feedback(store: ApprovalStore, approval_id: str, feedback: Any, *, by: str) -> ApprovalRecord:
    """Decide stored approval `approval_id` from a person's feedback (a `HumanFeedbackResult` or its text).

    The decision is the store's, so it stays bound to that payment, single-use and expiring.
    """
    text = str(getattr(feedback, "feedback", feedback) or "").strip()
    first = text.split()[0].strip(".,!;:").lower() if text else ""
    if first in YES:
        return store.approve(approval_id, by)
    return store.deny(approval_id, by, text or "no answer was given")
