"""AutoGen adapter: amp-tools `ToolSpec`s as `autogen_core` tools.

Translation only. A successful call returns `AmpToolResult(ok=True, data=...)`; the model is
shown `data` as JSON, the same text the other adapters produce. A core
`ToolError` is raised unchanged: `AssistantAgent` and `StaticWorkbench` turn any exception into a
result with `is_error=True` and the text `str(exc)` ("POLICY_VIOLATION: ... <hint>"). We raise
rather than return `ok=False` because the model then gets the framework's own error flag plus
the code, message and hint, and direct callers of `run_json` get a normal Python exception.
Arguments are checked with the spec first, so a schema error reads like the core's
`InvalidArguments` instead of a raw pydantic dump.

Component serialisation (`dump_component` / `load_component`) is deliberately not supported. A
spec's function is bound to live state (ledger, approver, AMP client, agent key); a config could
only rebuild it by naming a Python factory to import and call, which is code-by-configuration and
would invite secrets into dumped configs. `dump_component` raises `NotImplementedError` saying so;
build the tools in code with `to_autogen_tools(toolkit.specs())`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from autogen_core import CancellationToken
from autogen_core.tools import BaseTool
from pydantic import BaseModel

from amp_tools.toolkit import ToolSpec

__all__ = ["AmpAutogenTool", "AmpToolResult", "to_autogen_tools"]


class AmpToolResult(BaseModel):
    """A successful call's result for Python callers; the model sees only `data` as JSON."""

    ok: bool
    data: dict[str, Any]


class AmpAutogenTool(BaseTool[BaseModel, AmpToolResult]):
    """One amp-tools spec as an AutoGen tool (async; per-run state lives in the spec's toolkit)."""

    def __init__(self, spec: ToolSpec) -> None:
        super().__init__(args_type=spec.args_model, return_type=AmpToolResult,
                         name=spec.name, description=spec.description)
        self.spec = spec

    async def run_json(self, args: Mapping[str, Any], cancellation_token: CancellationToken,
                       call_id: str | None = None) -> Any:
        self.spec.parse_args(args)  # raises the core's readable InvalidArguments
        return await super().run_json(args, cancellation_token, call_id=call_id)

    async def run(self, args: BaseModel, cancellation_token: CancellationToken) -> AmpToolResult:
        return AmpToolResult(ok=True, data=await self.spec.ainvoke(args))

    def return_value_as_string(self, value: Any) -> str:
        # Same text as the LangChain and CrewAI adapters, so one demo script reads all three.
        return json.dumps(value.data if isinstance(value, AmpToolResult) else value, ensure_ascii=False)

    def _to_config(self) -> BaseModel:
        raise NotImplementedError(
            f"amp-tools tool {self.name!r} is bound to live ledger/approver state and cannot be dumped; "
            "rebuild it in code with amp_autogen.to_autogen_tools(toolkit.specs())")


def to_autogen_tools(specs: Iterable[ToolSpec]) -> list[BaseTool[Any, Any]]:
    """One `AmpAutogenTool` per spec."""
    return [AmpAutogenTool(spec) for spec in specs]
