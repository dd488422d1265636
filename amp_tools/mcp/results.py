"""Translation between tool specs and MCP: tool definitions, results and error results.

A success is the spec's JSON-able dict, as compact JSON text (the text the other adapters show
a model) and as structured content. A `ToolError` is an MCP tool error (``isError``): its text
is ``CODE: message [policy: rule] hint`` and its structured content carries code, message, hint
and details, so a client can read the code without parsing text.
"""

from __future__ import annotations

import json
from typing import Any

from mcp import types

from amp_tools.errors import AmpToolsError
from amp_tools.toolkit import ToolSpec

__all__ = ["error_result", "ok_result", "tool_of"]


def tool_of(spec: ToolSpec) -> types.Tool:
    """The MCP definition of one spec: input schema from its pydantic args model, output schema and the
    read-only mark from the tool's own declaration (`@tool(..., output=, read_only=)`)."""
    title = spec.name.replace("_", " ").capitalize()
    read_only = spec.read_only
    return types.Tool(name=spec.name, title=title, description=spec.description, inputSchema=spec.json_schema(),
                      outputSchema=spec.output_schema(),
                      annotations=types.ToolAnnotations(title=title, readOnlyHint=read_only,
                                                        destructiveHint=spec.moves_money,
                                                        idempotentHint=True if spec.moves_money or read_only else None,
                                                        openWorldHint=True))


def ok_result(data: dict[str, Any]) -> types.CallToolResult:
    text = json.dumps(data, ensure_ascii=False)
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], structuredContent=data,
                                isError=False)


def error_result(exc: AmpToolsError) -> types.CallToolResult:
    # Details are JSON-able by convention; a stray value (a Decimal, a date) must not break the error itself.
    structured = json.loads(json.dumps(exc.to_dict(), ensure_ascii=False, default=str))
    return types.CallToolResult(content=[types.TextContent(type="text", text=str(exc))],
                                structuredContent=structured, isError=True)
