"""amp-tools: budget-guarded AMP shopping and payment tools for AI agents.

The core imports no agent framework. The public surface is re-exported here.
"""

from amp_tools._version import __version__
from amp_tools.errors import (
    AmpError,
    AmpToolsError,
    ApprovalDenied,
    ApprovalPending,
    ConfigError,
    CurrencyMismatch,
    InvalidArguments,
    MoneyError,
    PolicyViolation,
    ToolError,
)
from amp_tools.money import Money

__all__ = [
    "AmpError",
    "AmpToolsError",
    "ApprovalDenied",
    "ApprovalPending",
    "ConfigError",
    "CurrencyMismatch",
    "InvalidArguments",
    "Money",
    "MoneyError",
    "PolicyViolation",
    "ToolError",
    "__version__",
]
