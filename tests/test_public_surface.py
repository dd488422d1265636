"""Each subpackage's public surface: what `__all__` lists is what users touch, and nothing else.

The lists are pinned here, so a name added to (or taken from) a package's exports is a decision made
in this file, not a side effect of an import. Every listed name imports from its package and is
named in README.md or docs/ (a name users touch that no doc mentions is either not public or
missing its doc line); a package holds no other public name, so internals are imported from the
module that defines them.
"""

from __future__ import annotations

import importlib
import re
import types
from pathlib import Path

import pytest

PUBLIC: dict[str, tuple[str, ...]] = {
    "amp_tools.amp": ("AgentKey", "AmpClient", "ChainError", "ChainResult", "Checkout", "Constraints", "NonceCache",
                      "Secret", "verify_chain"),
    "amp_tools.approvals": ("ApprovalDecision", "ApprovalRecord", "ApprovalRequest", "ApprovalStateError",
                            "ApprovalStore", "Approver", "CallbackApprover", "ConsoleApprover", "Consult",
                            "DenyApprover", "OutOfBandApprover", "WebhookApprover", "ask_yes_no", "off_loop",
                            "verify_signature"),
    "amp_tools.ledger": ("AlreadyCommitted", "AuditLog", "AuditRecord", "BudgetExists", "Entry", "InvalidTransition",
                         "Ledger", "LedgerBase", "PolicyVersion", "Refund", "Reservation", "StaleVersion",
                         "StoredBudget", "VerifyReport", "open_ledger", "parse_ledger_url"),
    "amp_tools.owner": ("OwnerKey", "OwnerPublicKey", "OwnerSignatureInvalid", "UnsignedAuthority",
                        "load_owner_signer", "resolve_owner_key", "sign", "verify"),
    "amp_tools.payments": ("Ask", "DURABILITY", "Execute", "ExecuteRefund", "ExecutionOutcome", "Guard",
                           "GuardResult", "Lifecycle", "PaymentHandle", "PaymentState", "ReconcileReport",
                           "Resolution", "TRANSITIONS", "allowed_from", "resolve", "settle", "settle_abandoned",
                           "state_of", "unresolved"),
    "amp_tools.policy": ("ApprovalRules", "BudgetPolicy", "Item", "MccRules", "MerchantRules", "NegotiationRules",
                         "SpendIntent", "Usage", "UsageFigure", "VelocityLimit", "Verdict", "WindowCap", "Windows",
                         "check_policy_file", "decide", "load_policy", "parse_policy", "policy_json_schema"),
    "amp_tools.toolkit": ("AmpToolkit", "ToolSpec", "WalletAction", "WalletPrompt", "run_sync", "validation_message"),
}

# Language plumbing a package may hold besides its exports.
_PLUMBING = {"annotations", "TYPE_CHECKING"}

_ROOT = Path(__file__).resolve().parents[1]


def _doc_spans() -> list[str]:
    texts = [(_ROOT / "README.md").read_text(encoding="utf-8")]
    texts += [p.read_text(encoding="utf-8") for p in sorted((_ROOT / "docs").glob("*.md"))]
    return re.findall(r"`[^`]{1,300}`", "\n".join(texts))


_SPANS = _doc_spans()


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_the_public_names_are_the_pinned_ones(package: str) -> None:
    exported = importlib.import_module(package).__all__
    assert sorted(exported) == sorted(PUBLIC[package]), (
        f"{package}.__all__ changed: a name joins or leaves the public surface only by editing PUBLIC here")
    assert len(set(exported)) == len(exported)


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_every_listed_name_imports_from_its_package(package: str) -> None:
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name, None) is not None, f"{package}.{name}"


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_a_package_holds_no_public_name_it_does_not_list(package: str) -> None:
    module = importlib.import_module(package)
    loose = {name for name, value in vars(module).items()
             if not name.startswith("_") and not isinstance(value, types.ModuleType)}
    assert loose - set(module.__all__) - _PLUMBING == set(), (
        "import internals from the module that defines them, not from the package")


@pytest.mark.parametrize(("package", "name"), [(p, n) for p in sorted(PUBLIC) for n in PUBLIC[p]])
def test_every_public_name_is_documented(package: str, name: str) -> None:
    word = re.compile(r"(?<!\w)" + re.escape(name) + r"(?!\w)")
    assert any(word.search(span) for span in _SPANS), (
        f"{package}.{name} is public but no `code span` in README.md or docs/ names it")
