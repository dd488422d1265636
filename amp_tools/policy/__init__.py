"""The user's budget policy: the model, file loading, window arithmetic and the decision.

Public names are re-exported here; the submodules are `model`, `loader`, `windows`,
`decide` and `mandate`.
"""

from __future__ import annotations

from amp_tools.policy.decide import (
    Item,
    SpendIntent,
    Usage,
    UsageFigure,
    UsageQuery,
    Verdict,
    decide,
    max_offer,
    static_check,
    usage_queries,
)
from amp_tools.policy.loader import check_policy_file, load_policy, parse_policy, policy_json_schema
from amp_tools.policy.mandate import MandateTerms, mandate_terms
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
from amp_tools.policy.windows import calendar_start, parse_duration, rolling_start, window_start

__all__ = [
    "ApprovalRules",
    "BudgetPolicy",
    "Item",
    "MandateTerms",
    "MccRules",
    "MerchantRules",
    "NegotiationRules",
    "SpendIntent",
    "Usage",
    "UsageFigure",
    "UsageQuery",
    "VelocityLimit",
    "Verdict",
    "WindowCap",
    "Windows",
    "calendar_start",
    "check_policy_file",
    "decide",
    "load_policy",
    "mandate_terms",
    "max_offer",
    "parse_duration",
    "parse_policy",
    "policy_json_schema",
    "rolling_start",
    "static_check",
    "usage_queries",
    "window_start",
]
