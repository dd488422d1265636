"""`amp-tools ledger tree`: a budget and its sub-budgets (a crew and its agents), as a tree.

Each line shows what the level has used (its own payments and every sub-budget's below it) and,
given the policy file, its total and what is left. `amp-tools ledger show --tree --budget ID`
prints the same tree above the entries.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from amp_tools import config
from amp_tools.cli_help import LedgerOpt
from amp_tools.errors import ConfigError
from amp_tools.money import Money

__all__ = ["ledger_tree", "print_tree"]

_out = Console()


def _limits(policy_file: Path | None, root: str) -> dict[str, Money]:
    if policy_file is None:
        return {}
    from amp_tools.policy import load_policy
    from amp_tools.policy.subbudgets import BudgetPath, agent_names

    policy = load_policy(policy_file)
    return {BudgetPath.of(policy, root, agent).budget_id: BudgetPath.of(policy, root, agent).leaf.policy.total_budget
            for agent in ["", *agent_names(policy)]}


def print_tree(ledger: str | None, budget: str, policy_file: Path | None = None) -> None:
    """Print `budget` and every sub-budget under it with used / limit / left."""
    from amp_tools.ledger import open_ledger

    async def fetch() -> list[tuple[str, str | None, str, int, int]]:
        led = open_ledger(ledger or config.ledger_url())
        try:
            return await led.budget_tree(budget)
        finally:
            await led.close()

    rows = asyncio.run(fetch())
    if not rows:
        raise ConfigError(f"budget {budget!r} has no payments in this ledger yet; nothing to show")
    limits = _limits(policy_file, budget)
    nodes: dict[str, Tree] = {}
    root = Tree(f"[bold]budgets under {escape(budget)}[/bold]")
    for budget_id, parent, currency, used, count in rows:
        name = budget_id if parent is None else budget_id.rsplit("/", 1)[-1]
        text = f"{escape(name)}  used {Money(used, currency)} ({count} payments)"
        limit = limits.get(budget_id)
        if limit is not None:
            left = Money(max(0, limit.minor - used), currency)
            text += f"  of {limit}, {left} left"
        holder = nodes.get(parent or "", root) if parent is not None else root
        nodes[budget_id] = holder.add(text)
    _out.print(root)


def ledger_tree(
    budget: Annotated[str, typer.Argument(metavar="ID", help="The crew's (root) budget id, e.g. trip or user:42.",
                                          show_default=False)],
    ledger: LedgerOpt = None,
    policy: Annotated[Path | None, typer.Option(metavar="PATH", help="The policy file, to show each level's total "
                                                                     "and room.")] = None,
) -> None:
    """Show a budget and its sub-budgets as a tree: used, and with --policy the limit and what is left."""
    print_tree(ledger, budget, policy)
