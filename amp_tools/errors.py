"""The error taxonomy of amp-tools.

Two families:

* `ToolError` and its subclasses are business outcomes a model may read and act on
  (bad arguments, a refused payment, an approval still pending, an AMP rejection). Every
  adapter turns them into its framework's "error result shown to the model"; they never
  abort an agent run. Each carries a stable `code`, a message that says what was wrong,
  and a `hint` saying what to do next.
* `ConfigError` (policy files, settings) and `MoneyError` are for people and programs
  configuring the toolkit; they also say what was wrong and what is expected.
"""

from __future__ import annotations

from typing import Any


def _joined(text: str, hint: str) -> str:
    """`text`, a full stop if it has none, then the hint: two sentences, not one run-on line."""
    if not hint:
        return text
    return f"{text}{'' if text.rstrip().endswith(('.', '!', '?')) else '.'} {hint}"


class AmpToolsError(Exception):
    """Base class of every error raised on purpose by amp-tools."""

    code: str = "AMP_TOOLS_ERROR"

    def __init__(self, message: str, *, code: str | None = None, hint: str = "",
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.hint = hint
        self.details: dict[str, Any] = dict(details or {})

    def __str__(self) -> str:
        return _joined(f"{self.code}: {self.message}", self.hint)

    def to_dict(self) -> dict[str, Any]:
        """A compact, secret-free form for tool results and logs."""
        out: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.hint:
            out["hint"] = self.hint
        if self.details:
            out["details"] = self.details
        return out


class MoneyError(AmpToolsError, ValueError):
    """An amount or currency that is not valid money."""

    code = "INVALID_MONEY"


class CurrencyMismatch(MoneyError):
    """Arithmetic or comparison across two currencies without an explicit FX rate."""

    code = "CURRENCY_MISMATCH"


class ConfigError(AmpToolsError, ValueError):
    """A policy file or setting that cannot be used as given."""

    code = "INVALID_CONFIG"


class ToolError(AmpToolsError):
    """A business error whose text is shown to the model as the tool's result."""

    code = "TOOL_ERROR"


class InvalidArguments(ToolError):
    """The model called a tool with arguments that do not fit its schema."""

    code = "INVALID_ARGUMENTS"


class NotFound(ToolError):
    """A referenced object (offer, quote, checkout, order, mandate) does not exist."""

    code = "NOT_FOUND"


class PolicyViolation(ToolError):
    """The user's budget policy refuses the action. `rule` names the deciding rule."""

    code = "POLICY_VIOLATION"

    def __init__(self, message: str, *, rule: str, hint: str = "",
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message, hint=hint, details={"rule": rule, **(details or {})})
        self.rule = rule

    def __str__(self) -> str:
        # Adapters show the model only this text, not `details`: name the policy setting that
        # refused, so the model can tell the user which one to raise (or choose within it).
        return _joined(f"{self.code}: {self.message} [policy: {self.rule}]", self.hint)


class ApprovalPending(ToolError):
    """A person must approve the payment out of band before it can go ahead."""

    code = "APPROVAL_PENDING"


class ApprovalDenied(ToolError):
    """A person (or the non-interactive default) declined the payment."""

    code = "APPROVAL_DENIED"


class PaymentInProgress(ToolError):
    """The same payment is already being processed; it will not be started twice."""

    code = "PAYMENT_IN_PROGRESS"


class AmpError(ToolError):
    """A rejection or failure reported by an AMP peer (CP, network, wallet, merchant).

    `code` is an AMP result code such as ``CHECKOUT_AMOUNT_EXCEEDS_BUDGET``; `retryable`
    says whether the same request may be sent again with the same idempotency key.
    """

    code = "AMP_ERROR"

    def __init__(self, message: str, *, code: str = "AMP_ERROR", hint: str = "",
                 retryable: bool = False, status: int | None = None,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message, code=code, hint=hint, details=details)
        self.retryable = retryable
        self.status = status


class LedgerUnavailable(ToolError):
    """The ledger's database refused or lost the connection (server down, too many clients, cut off).

    A transaction cut off before it committed was rolled back by the server: nothing of it was
    written. ``details["outcome"] == "unknown"`` marks the rare cut-off while the commit itself was
    in flight, where the change may or may not have been saved.
    """

    code = "LEDGER_UNAVAILABLE"


class LedgerBusy(LedgerUnavailable):
    """Every connection of the ledger's pool stayed in use for the whole wait; nothing was written."""

    code = "LEDGER_BUSY"
