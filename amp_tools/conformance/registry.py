"""The ordered list of checks: each registered once, beside its code, with its spec citation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from amp_tools.conformance.context import Ctx
from amp_tools.conformance.model import CheckSpec, Level

__all__ = ["CHECKS", "CheckFn", "all_checks", "check"]

CheckFn = Callable[[Ctx], Awaitable[str | None]]
CHECKS: list[tuple[CheckSpec, CheckFn]] = []


def check(id: str, group: str, level: Level, source: str, title: str) -> Callable[[CheckFn], CheckFn]:
    """Register a check. It returns a short PASS note, or raises `Fail` / `Skip`."""
    def deco(fn: CheckFn) -> CheckFn:
        if any(spec.id == id for spec, _ in CHECKS):
            raise ValueError(f"check id {id!r} registered twice")
        CHECKS.append((CheckSpec(id=id, group=group, title=title, level=level, source=source), fn))
        return fn
    return deco


def all_checks() -> list[tuple[CheckSpec, CheckFn]]:
    """Every check, in run order (importing the check modules registers them)."""
    from amp_tools.conformance import (
        checks_chain,
        checks_cp,
        checks_mandate,
        checks_merchant,
        checks_payment,
        checks_privacy,
        checks_token,
        checks_wallet,
    )

    del checks_chain, checks_cp, checks_mandate, checks_merchant, checks_payment, checks_privacy, checks_token
    del checks_wallet
    order = {"cp": 0, "wallet": 1, "mandate": 2, "chain": 3, "token": 4, "merchant": 5, "payment": 6, "privacy": 7}
    return sorted(CHECKS, key=lambda c: order.get(c[0].group, 9))
