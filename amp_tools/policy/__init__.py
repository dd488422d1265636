"""The user's budget policy: the model, file loading, window arithmetic and the decision.

Public names are re-exported here; the submodules are `model`, `loader`, `windows`,
`decide` and `mandate`.
"""

from __future__ import annotations

# What a user writes, loads, checks and asks about a policy touches (`decide` with the `Usage` it takes);
# the window arithmetic, the usage queries the ledger answers and the mandate terms stay in their modules.
from amp_tools.policy.decide import Item, SpendIntent, Usage, UsageFigure, Verdict, decide
from amp_tools.policy.loader import check_policy_file, load_policy, parse_policy, policy_json_schema
from amp_tools.policy.model import (
    ApprovalRules,
    BudgetPolicy,
    MccRules,
    MerchantRules,
    NegotiationRules,
    VelocityLimit,
    WindowCap,
    Windows,
)

__all__ = [
    "ApprovalRules",
    "BudgetPolicy",
    "Item",
    "MccRules",
    "MerchantRules",
    "NegotiationRules",
    "SpendIntent",
    "Usage",
    "UsageFigure",
    "VelocityLimit",
    "Verdict",
    "WindowCap",
    "Windows",
    "check_policy_file",
    "decide",
    "load_policy",
    "parse_policy",
    "policy_json_schema",
]
