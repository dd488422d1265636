"""What a conformance run produces: check specs, outcomes, recorded exchanges, the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

__all__ = ["CheckResult", "CheckSpec", "Exchange", "Level", "Outcome", "Report"]

Level = Literal["MUST", "SHOULD"]


class Outcome(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    SKIPPED = "SKIPPED"


@dataclass(frozen=True)
class CheckSpec:
    """One requirement: a stable id, what it checks, how strongly and where the spec says so."""

    id: str
    group: str  # the contract it exercises: cp, chain, token, payment, merchant, privacy
    title: str
    level: Level
    source: str  # section (and item) of amp-protocol.md, or amp-reference-wire.md where noted


@dataclass
class Exchange:
    """One HTTP request and its answer, as sent and received (secrets redacted)."""

    method: str
    url: str
    request: Any
    status: int | None
    response: Any
    elapsed_ms: float
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "url": self.url, "request": self.request, "status": self.status,
                "response": self.response, "elapsedMs": round(self.elapsed_ms, 1), "note": self.note}


@dataclass
class CheckResult:
    spec: CheckSpec
    outcome: Outcome
    reason: str
    exchanges: list[Exchange] = field(default_factory=list)
    elapsed_ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.spec.id, "group": self.spec.group, "title": self.spec.title, "level": self.spec.level,
                "source": self.spec.source, "outcome": self.outcome.value, "reason": self.reason,
                "elapsedMs": round(self.elapsed_ms, 1),
                "exchanges": [e.as_dict() for e in self.exchanges] if self.outcome is Outcome.FAIL else []}


@dataclass
class Report:
    targets: dict[str, str]
    results: list[CheckResult]
    requests_sent: int
    elapsed_ms: float
    notes: list[str] = field(default_factory=list)

    def count(self, outcome: Outcome, level: Level | None = None) -> int:
        return sum(1 for r in self.results if r.outcome is outcome and (level is None or r.spec.level == level))

    def must_all_pass(self) -> bool:
        """True when every MUST check passed (a skipped MUST is not a pass)."""
        return all(r.outcome is Outcome.PASS for r in self.results if r.spec.level == "MUST")

    def must_failed(self) -> bool:
        return any(r.outcome is Outcome.FAIL for r in self.results if r.spec.level == "MUST")

    def failing_ids(self) -> set[str]:
        return {r.spec.id for r in self.results if r.outcome is Outcome.FAIL}

    def as_dict(self) -> dict[str, Any]:
        return {
            "targets": self.targets, "requestsSent": self.requests_sent, "elapsedMs": round(self.elapsed_ms, 1),
            "summary": {o.value: self.count(o) for o in Outcome} | {
                "mustFailed": self.count(Outcome.FAIL, "MUST"), "mustSkipped": self.count(Outcome.SKIPPED, "MUST"),
                "allMustPassed": self.must_all_pass()},
            "notes": self.notes,
            "checks": [r.as_dict() for r in self.results],
        }
