"""The tool list: `ToolSpec`, the `tool` decorator every tool function carries, and `build_specs`.

A tool is declared once, on its function: ``@tool("pay", "Pay a checkout...", PayArgs,
output=PAYMENT, moves_money=True)`` registers its name, the description a model reads, the
pydantic model of its arguments (amounts are decimal strings, never JSON numbers), the shape of
its result (a shape from `_outputs`), and whether it moves money or only reads (no money moves,
nothing is created at a merchant or in the ledger).
`build_specs` turns the registrations into one session's `ToolSpec`s, in the order of
`TOOL_ORDER`. A spec's function returns a compact, secret-free JSON-able dict (bounded in size
by `_bound`). Adapters translate specs into their framework's tool type and map `ToolError` to
that framework's error result; they decide nothing about money.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from amp_tools.errors import InvalidArguments
from amp_tools.toolkit._bound import bound_result
from amp_tools.toolkit._outputs import published

if TYPE_CHECKING:
    from amp_tools.toolkit._core import ToolkitCore

__all__ = ["TOOL_ORDER", "ToolSpec", "build_specs", "declared_outputs", "read_only_tools", "registered", "run_sync",
           "tool", "validation_message"]

ToolFunc = Callable[[Any], Awaitable[dict[str, Any]]]


def validation_message(tool: str, exc: ValidationError, model: type[BaseModel] | None = None) -> str:
    """One readable sentence per wrong field: which field, what was wrong, what is expected.

    A missing argument says what it is for, from the field's description in `model`
    ("query is required: what to look for, e.g. 'flight Singapore'").
    """
    errors = exc.errors(include_url=False)
    parts = []
    # Field names come from the caller too (an unknown key may be any length): bound both.
    for err in errors[:_MAX_PROBLEMS]:
        loc = _bounded(".".join(str(p) for p in err.get("loc", ())) or "(arguments)")
        if err.get("type") == "missing":
            parts.append(_missing(loc, model))
            continue
        got = err.get("input")
        shown = _bounded(repr(got) if not isinstance(got, dict) else "an object")
        parts.append(f"{loc}: {err.get('msg', 'invalid')} (got {shown})")
    if len(errors) > _MAX_PROBLEMS:
        parts.append(f"and {len(errors) - _MAX_PROBLEMS} more problem(s)")
    return f"invalid arguments for {tool}: " + "; ".join(parts)


_MAX_PROBLEMS = 8


def _missing(name: str, model: type[BaseModel] | None) -> str:
    field = model.model_fields.get(name) if model is not None else None
    about = (field.description or "").strip() if field is not None else ""
    if not about:
        return f"{name} is required"
    return f"{name} is required: {about[0].lower()}{about[1:]}"


def _bounded(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def run_sync(awaitable_factory: Callable[[], Awaitable[Any]]) -> Any:
    """Run a coroutine from sync code, whether or not this thread already runs a loop.

    Frameworks call sync tools from threads without a loop (CrewAI, LangChain sync paths);
    when a loop is running here we must not nest it, so the coroutine runs on a helper thread.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_as_coro(awaitable_factory))
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _as_coro(awaitable_factory)).result()


async def _as_coro(factory: Callable[[], Awaitable[Any]]) -> Any:
    return await factory()


@dataclass(frozen=True)
class ToolSpec:
    """One tool as every framework sees it."""

    name: str
    description: str
    args_model: type[BaseModel]
    func: ToolFunc
    moves_money: bool = False
    #: The result shape the tool declared (None: any object); `output_schema()` is what clients read.
    output: dict[str, Any] | None = field(default=None, compare=False)
    read_only: bool = False

    def output_schema(self) -> dict[str, Any]:
        """The JSON Schema of this tool's results, shortened results included (MCP's ``outputSchema``)."""
        return published(self.output)

    def parse_args(self, args: BaseModel | Mapping[str, Any] | None) -> BaseModel:
        if isinstance(args, self.args_model):
            return args
        if isinstance(args, BaseModel):
            args = args.model_dump()
        if args is not None and not isinstance(args, Mapping):
            raise InvalidArguments(f"invalid arguments for {self.name}: (arguments): expected an object of named "
                                   f"arguments, got {type(args).__name__}",
                                   hint="Pass the arguments as a JSON object such as {\"checkout_id\": \"...\"}.")
        try:
            return self.args_model.model_validate(dict(args or {}))
        except ValidationError as exc:
            raise InvalidArguments(validation_message(self.name, exc, self.args_model),
                                   hint="Fix the named fields and call the tool again.") from None

    async def ainvoke(self, args: BaseModel | Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Validate `args` and run the tool. Business errors raise `ToolError`; results are bounded."""
        return bound_result(await self.func(self.parse_args(args)))

    def invoke(self, args: BaseModel | Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Sync form of `ainvoke` for frameworks that call tools from plain threads."""
        parsed = self.parse_args(args)
        result: dict[str, Any] = run_sync(lambda: self.func(parsed))
        return bound_result(result)

    def json_schema(self) -> dict[str, Any]:
        return self.args_model.model_json_schema()


# ---------------------------------------------------------------------- registration
#: The order models see the tools in (the order of the lists adapters and the MCP server hand them):
#: shopping first, then the mandate, paying, and the status and refund tools. A registered tool must
#: be placed here; `build_specs` refuses a list with a tool missing or unplaced.
TOOL_ORDER = ("discover_merchants", "search_offers", "request_quote", "negotiate", "accept_quote", "checkout",
              "request_mandate", "mandate_status", "pay", "budget_status", "order_status", "refund")

A = TypeVar("A", bound=BaseModel)
ToolImpl = Callable[["ToolkitCore", A], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class _Registration:
    name: str
    description: str
    args_model: type[BaseModel]
    func: Callable[[Any, Any], Awaitable[dict[str, Any]]]
    moves_money: bool
    output: dict[str, Any]
    read_only: bool


_REGISTRY: dict[str, _Registration] = {}


def tool(name: str, description: str, args_model: type[A], *, output: dict[str, Any], moves_money: bool = False,
         read_only: bool = False) -> Callable[[ToolImpl[A]], ToolImpl[A]]:
    """Register the decorated ``async def fn(tk, args)`` as the tool `name`; the function is returned unchanged."""
    if moves_money and read_only:
        raise ValueError(f"the tool {name!r} cannot both move money and only read")

    def register(func: ToolImpl[A]) -> ToolImpl[A]:
        known = _REGISTRY.get(name)
        if known is not None and known.func is not func:
            raise ValueError(f"two functions are registered as the tool {name!r}")
        _REGISTRY[name] = _Registration(name, description, args_model, func, moves_money, output, read_only)
        return func

    return register


def registered() -> list[str]:
    """The names of the tools registered so far, in registration order."""
    return list(_REGISTRY)


def declared_outputs() -> dict[str, dict[str, Any]]:
    """Each registered tool's result shape, by name (read from the registrations, not kept apart)."""
    return {name: r.output for name, r in _REGISTRY.items()}


def read_only_tools() -> frozenset[str]:
    """The registered tools declared read-only."""
    return frozenset(name for name, r in _REGISTRY.items() if r.read_only)


def build_specs(tk: ToolkitCore) -> list[ToolSpec]:
    """The session's tool list: every registered tool bound to `tk`, in `TOOL_ORDER`."""
    unplaced = [name for name in _REGISTRY if name not in TOOL_ORDER]
    missing = [name for name in TOOL_ORDER if name not in _REGISTRY]
    if unplaced or missing:
        raise RuntimeError(f"the tool registry and TOOL_ORDER differ: not placed {unplaced}, not registered {missing}")

    def bind(fn: Callable[[Any, Any], Awaitable[dict[str, Any]]]) -> ToolFunc:
        async def call(parsed: Any) -> dict[str, Any]:
            # A durable session is read before the tool and written after it, whatever the tool's outcome:
            # a checkout made or a wallet binding started survives a crash of the next call.
            await tk.load_session()
            try:
                return await fn(tk, parsed)
            finally:
                await tk.save_session()

        return call

    return [ToolSpec(name=r.name, description=r.description, args_model=r.args_model, func=bind(r.func),
                     moves_money=r.moves_money, output=r.output, read_only=r.read_only)
            for r in (_REGISTRY[name] for name in TOOL_ORDER)]
