"""`amp-tools conformance`: check any AMP Credential Provider, merchant and wallet against the spec.

Each check cites the section of amp-protocol.md it comes from and its level (MUST or SHOULD)
and ends PASS, FAIL (with the exact requests and responses, secrets redacted) or SKIPPED (with
why). The checker takes an httpx transport, so it runs in-process against an ASGI app too::

    report = await run_conformance(Target(cp="http://sandbox", merchant="http://sandbox/merchants/SUNNY-TOURS"),
                                   transport=sandbox.transport())
"""

from __future__ import annotations

from amp_tools.conformance.model import CheckResult, CheckSpec, Exchange, Outcome, Report
from amp_tools.conformance.runner import run_conformance, select_checks
from amp_tools.conformance.safety import is_safe_host
from amp_tools.conformance.target import Target

__all__ = [
    "CheckResult", "CheckSpec", "Exchange", "Outcome", "Report", "Target", "is_safe_host", "run_conformance",
    "select_checks",
]
