"""Which policy a process enforces on a budget: the one stored in the ledger, never its own file.

`use_budget` is what every process that spends (a toolkit, the MCP server) calls at start. A budget
that is stored governs: a process that brings no policy enforces the stored one; a process whose
policy differs from the stored version refuses to start, showing the diff and the owner's command
that changes it. A budget id not in the ledger yet is created from the given policy and recorded as
created by this process (so the two-line local start keeps working), as is a budget seen only in
entries by an earlier version (adopted). A policy with sub-budgets (`agents:`) stores each agent's
level too, linked to its parent, with the effective policy the root's file gives it.
"""

from __future__ import annotations

import json
import os
import socket

from amp_tools.errors import ConfigError
from amp_tools.ledger import BudgetExists, LedgerBase, StaleVersion, StoredBudget
from amp_tools.policy import BudgetPolicy, parse_policy
from amp_tools.policy.diff import diff_policies
from amp_tools.policy.subbudgets import BudgetPath, agent_names

__all__ = ["PolicyDiffers", "process_label", "store_sub_budgets", "use_budget"]


class PolicyDiffers(ConfigError):
    """A process brought a policy that differs from the budget's stored version."""


def process_label(extra: str = "") -> str:
    """Who a process is, for the audit: host, pid and (optionally) what it runs."""
    who = f"{socket.gethostname()} pid {os.getpid()}"
    return f"{extra} ({who})" if extra else who


def _differs(stored: StoredBudget, given: BudgetPolicy, source: str) -> PolicyDiffers:
    lines = diff_policies(stored.policy_json, given)
    shown = "\n".join(f"  {line}" for line in lines)
    return PolicyDiffers(
        f"budget {stored.budget_id!r} is governed by its stored policy (version {stored.policy_version}, set by "
        f"{stored.updated_by}); {source} differs from it:\n{shown}\n"
        "A process never enforces a policy of its own on a stored budget. Start without a policy to use the "
        f"stored one, or have the budget's owner change it: amp-tools budgets set-policy {stored.budget_id} "
        "--policy FILE",
        hint=f"amp-tools budgets set-policy {stored.budget_id} --policy FILE",
        details={"budget_id": stored.budget_id, "version": stored.policy_version, "diff": lines})


def _storable(level_policy: BudgetPolicy) -> BudgetPolicy | None:
    """The level's effective policy as a valid stand-alone policy (a parent's per-payment cap above the
    agent's own total is the same limit as that total), or None if it cannot be one."""
    policy = level_policy
    most = policy.per_transaction_max
    if most is not None and most > policy.total_budget:
        policy = policy.model_copy(update={"per_transaction_max": policy.total_budget})
    try:
        return parse_policy(json.loads(policy.canonical_json()))
    except ConfigError:
        return None


def store_sub_budgets(ledger: LedgerBase, root: StoredBudget, *, by: str) -> None:
    """Store (or bring up to date) every sub-budget level of `root`'s policy, parents first, linked to
    their parent. They show each agent's limits (`budgets list`, `ledger tree`, the console); what is
    enforced is the root's stored policy, which carries them under `agents:`."""
    policy: BudgetPolicy = root.policy
    note = f"derived from {root.budget_id} policy version {root.policy_version}"
    for agent in agent_names(policy):
        level = BudgetPath.of(policy, root.budget_id, agent).leaf
        storable = _storable(level.policy)
        if storable is None:
            continue
        current = ledger.get_budget_sync(level.budget_id)
        if current is None:
            try:
                ledger.create_budget_sync(level.budget_id, storable, by=by, parent=level.parent, note=note)
            except BudgetExists:
                continue  # another process stored it at the same moment, from the same root version
        elif current.policy_hash != storable.snapshot_hash():
            try:
                ledger.set_policy_sync(level.budget_id, storable, by=by, expected_version=current.policy_version,
                                       note=note)
            except StaleVersion:
                continue  # another process brought it up to date at the same moment


def use_budget(ledger: LedgerBase, budget_id: str, policy: BudgetPolicy | None, *, by: str,
               source: str = "the policy this process was given") -> StoredBudget:
    """The stored budget this process must enforce (creating it from `policy` if it is not stored yet)."""
    stored = ledger.get_budget_sync(budget_id)
    if stored is None:
        if policy is None:
            raise ConfigError(f"budget {budget_id!r} is not in this ledger and no policy was given to create it",
                              hint=f"Have the owner create it: amp-tools budgets create {budget_id} --policy FILE "
                                   "(or pass policy= to create it from this process).")
        try:
            stored = ledger.create_budget_sync(budget_id, policy, by=by)
        except BudgetExists:
            stored = ledger.get_budget_sync(budget_id)  # created meanwhile by another process: compare below
            assert stored is not None
    if policy is not None and policy.snapshot_hash() != stored.policy_hash:
        raise _differs(stored, policy, source)
    if stored.policy.agents:
        store_sub_budgets(ledger, stored, by=by)
    return stored

