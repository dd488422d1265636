"""amp-tools: budget-guarded AMP shopping and payment tools for AI agents.

The front door: everything a user builds an agent with is importable from here in one line
(`from amp_tools import AmpToolkit, AmpClient, open_ledger, load_policy, ConsoleApprover`). Money and
the errors load with the package; the rest loads on first use through the module `__getattr__`, so
`import amp_tools` stays light and pulls no web stack, and the sandbox (the `sandbox` extra) is only
imported by a program that names it. The core imports no agent framework.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from amp_tools._version import __version__
from amp_tools.errors import (
    AmpError,
    AmpToolsError,
    ApprovalDenied,
    ApprovalPending,
    ConfigError,
    CurrencyMismatch,
    InvalidArguments,
    LedgerBusy,
    LedgerUnavailable,
    MoneyError,
    NotFound,
    PaymentInProgress,
    PolicyViolation,
    ToolError,
)
from amp_tools.money import Money

if TYPE_CHECKING:
    from amp_tools.amp import AgentKey, AmpClient
    from amp_tools.approvals import (
        ApprovalStore,
        CallbackApprover,
        ConsoleApprover,
        DenyApprover,
        OutOfBandApprover,
        WebhookApprover,
    )
    from amp_tools.clock import ManualClock, SystemClock
    from amp_tools.ledger import open_ledger
    from amp_tools.policy import BudgetPolicy, load_policy, parse_policy
    from amp_tools.sandbox import Sandbox, SandboxConfig
    from amp_tools.toolkit import AmpToolkit

# name -> the module that defines it; imported the first time the name is read.
_LAZY = {
    "AgentKey": "amp_tools.amp",
    "AmpClient": "amp_tools.amp",
    "ApprovalStore": "amp_tools.approvals",
    "CallbackApprover": "amp_tools.approvals",
    "ConsoleApprover": "amp_tools.approvals",
    "DenyApprover": "amp_tools.approvals",
    "OutOfBandApprover": "amp_tools.approvals",
    "WebhookApprover": "amp_tools.approvals",
    "ManualClock": "amp_tools.clock",
    "SystemClock": "amp_tools.clock",
    "open_ledger": "amp_tools.ledger",
    "BudgetPolicy": "amp_tools.policy",
    "load_policy": "amp_tools.policy",
    "parse_policy": "amp_tools.policy",
    "Sandbox": "amp_tools.sandbox",
    "SandboxConfig": "amp_tools.sandbox",
    "AmpToolkit": "amp_tools.toolkit",
}

__all__ = [
    "AgentKey",
    "AmpClient",
    "AmpError",
    "AmpToolkit",
    "AmpToolsError",
    "ApprovalDenied",
    "ApprovalPending",
    "ApprovalStore",
    "BudgetPolicy",
    "CallbackApprover",
    "ConfigError",
    "ConsoleApprover",
    "CurrencyMismatch",
    "DenyApprover",
    "InvalidArguments",
    "LedgerBusy",
    "LedgerUnavailable",
    "ManualClock",
    "Money",
    "MoneyError",
    "NotFound",
    "OutOfBandApprover",
    "PaymentInProgress",
    "PolicyViolation",
    "Sandbox",
    "SandboxConfig",
    "SystemClock",
    "ToolError",
    "WebhookApprover",
    "__version__",
    "load_policy",
    "open_ledger",
    "parse_policy",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'amp_tools' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later reads skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
