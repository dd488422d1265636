"""The ledger's view of the policy module: the few names it calls, typed structurally.

The ledger runs the policy's pure `decide` inside its check-and-reserve transaction but must not
depend on the policy's internals, so it sees `BudgetPolicy` and the usage types only through the
protocols below. The intent is not one of them: `IntentLike` is `amp_tools.intent.SpendIntent`
itself, the one shape the policy decides on and the ledger records (a module with no dependency
beyond `Money`). `PolicyEngine` is the seam: by default it is the real
`amp_tools.policy.decide` module, imported lazily; tests may pass any object with the same names.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeAlias

from amp_tools.intent import SpendIntent
from amp_tools.money import Money

__all__ = ["IntentLike", "LevelLike", "PathLike", "PolicyEngine", "PolicyLike", "QueryLike", "default_engine"]


class PolicyLike(Protocol):
    @property
    def currency(self) -> str: ...

    def snapshot_hash(self) -> str: ...


#: What `reserve` takes: the policy's intent, by name kept for the ledger's signatures.
IntentLike: TypeAlias = SpendIntent


class QueryLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def scope(self) -> str: ...
    @property
    def key(self) -> str | None: ...
    @property
    def since(self) -> datetime | None: ...


class LevelLike(Protocol):
    """One level of a budget path (`amp_tools.policy.subbudgets.BudgetLevel`)."""

    @property
    def budget_id(self) -> str: ...
    @property
    def policy(self) -> Any: ...
    @property
    def covers(self) -> Sequence[str]: ...
    @property
    def parent(self) -> str | None: ...


class PathLike(Protocol):
    """The levels a payment of a sub-budget must fit, root first (`BudgetPath`)."""

    @property
    def levels(self) -> Sequence[LevelLike]: ...
    @property
    def budget_id(self) -> str: ...
    @property
    def parents(self) -> Sequence[str]: ...

    def decide(self, intent: Any, usages: Sequence[Any]) -> Any: ...


class PolicyEngine(Protocol):
    """What `amp_tools.policy.decide` provides (module attributes satisfy it)."""

    def usage_queries(self, policy: Any, intent: Any) -> Sequence[QueryLike]: ...

    def decide(self, policy: Any, intent: Any, usage: Any) -> Any: ...

    def Usage(self, figures: Mapping[str, Any], merchant_seen: bool) -> Any: ...

    def UsageFigure(self, name: str, amount: Money, count: int) -> Any: ...


def default_engine() -> PolicyEngine:
    """The real policy module; imported on first use so the ledger imports without it."""
    module: Any = importlib.import_module("amp_tools.policy.decide")
    engine: PolicyEngine = module
    return engine
