"""Run the checks in order against one target and collect a `Report`.

Checks run one after another (they share wallet bindings and a merchant, and the last one may
move a sandbox's clock); `on_result` is told about each as it ends, for live progress.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Iterable

import httpx

from amp_tools.conformance.context import Ctx, Fail, Skip
from amp_tools.conformance.model import CheckResult, CheckSpec, Outcome, Report
from amp_tools.conformance.probe import BudgetExhausted, Probe
from amp_tools.conformance.registry import CheckFn, all_checks
from amp_tools.conformance.target import Target

__all__ = ["run_conformance", "select_checks"]


def select_checks(patterns: Iterable[str] | None = None) -> list[tuple[CheckSpec, CheckFn]]:
    """Every check, or those whose id matches one of the glob `patterns` (``token.*``)."""
    checks = all_checks()
    pats = [p for p in (patterns or []) if p]
    if not pats:
        return checks
    chosen = [c for c in checks if any(fnmatch.fnmatchcase(c[0].id, p) for p in pats)]
    if not chosen:
        raise ValueError(f"no check id matches {', '.join(pats)}; `amp-tools conformance --list` shows them")
    return chosen


async def run_conformance(target: Target, *, transport: httpx.AsyncBaseTransport | None = None,
                          only: Iterable[str] | None = None, max_requests: int = 400, timeout: float = 15.0,
                          on_start: Callable[[CheckSpec], None] | None = None,
                          on_result: Callable[[CheckResult], None] | None = None) -> Report:
    """Run the selected checks; never raises for what the target does (that is what results are for)."""
    checks = select_checks(only)
    probe = Probe(transport=transport, timeout=timeout, max_requests=max_requests)
    ctx = Ctx(target, probe)
    results: list[CheckResult] = []
    started = time.perf_counter()
    try:
        for spec, fn in checks:
            if on_start:
                on_start(spec)
            results.append(await _run_one(ctx, spec, fn))
            if on_result:
                on_result(results[-1])
    finally:
        await probe.close()
    notes = [f"agent {ctx.agent_id}, key kid {ctx.key.kid!r}", *ctx.notes]
    unanswered = sum(1 for e in probe.log if e.status is None)
    if unanswered:
        notes.append(f"{unanswered} of {probe.sent} requests got no answer at all (connection refused or timed out); "
                     "is every URL right and the service up?")
    return Report(target.describe(), results, probe.sent, (time.perf_counter() - started) * 1000, notes)


async def _run_one(ctx: Ctx, spec: CheckSpec, fn: CheckFn) -> CheckResult:
    first = len(ctx.probe.log)
    t0 = time.perf_counter()
    try:
        note = await fn(ctx)
        outcome, reason, evidence = Outcome.PASS, note or "", []
    except Fail as exc:
        outcome, reason, evidence = Outcome.FAIL, str(exc), exc.exchanges
    except (Skip, BudgetExhausted) as exc:
        outcome, reason, evidence = Outcome.SKIPPED, str(exc), []
    except Exception as exc:  # the target answered something the checker cannot read: not a pass
        outcome, reason, evidence = (Outcome.FAIL, f"the target's answers could not be interpreted "
                                     f"({type(exc).__name__}: {exc})", [])
    if outcome is Outcome.FAIL and not evidence:
        evidence = ctx.probe.log[first:]
    return CheckResult(spec, outcome, reason, list(evidence), (time.perf_counter() - t0) * 1000)
