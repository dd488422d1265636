"""The terminal report: a progress line while checks run, then the summary first (counts, one
line per FAIL with its section) that fits 80 columns, then the details and each FAIL's evidence."""

from __future__ import annotations

import json
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.padding import Padding
from rich.panel import Panel
from rich.spinner import Spinner
from rich.text import Text

from amp_tools.conformance.model import CheckResult, CheckSpec, Outcome, Report
from amp_tools.terminal import terminal_plain, terminal_safe

__all__ = ["LiveProgress", "print_details", "print_evidence", "print_report", "print_summary", "summary_lines"]

_STYLE = {Outcome.PASS: "green", Outcome.FAIL: "bold red", Outcome.SKIPPED: "yellow"}

#: the report's sections, in the order of docs/CONFORMANCE.md
SECTIONS = {"cp": "Credential Provider", "wallet": "wallet", "mandate": "mandates", "chain": "mandate chain",
            "token": "token issuance", "merchant": "merchant", "payment": "payments", "privacy": "privacy"}


class LiveProgress:
    """One transient spinner line (``check 7/40: id``); pass `started` / `finished` to `run_conformance`."""

    def __init__(self, console: Console, total: int) -> None:
        self.total = total
        self.done = 0
        self._live = Live(Spinner("dots", text="starting"), console=console, refresh_per_second=8, transient=True)

    def started(self, spec: CheckSpec) -> None:
        self._live.update(Spinner("dots", text=f"check {self.done + 1}/{self.total}: {terminal_safe(spec.id)}"))

    def finished(self, result: CheckResult) -> None:
        self.done += 1

    def __enter__(self) -> LiveProgress:
        self._live.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._live.__exit__(exc_type, exc, tb)


def summary_lines(report: Report) -> list[str]:
    """Plain text, none longer than 80 characters: counts, the verdict, then one line per FAIL."""
    must_fail, must_skip = report.count(Outcome.FAIL, "MUST"), report.count(Outcome.SKIPPED, "MUST")
    verdict = ("every MUST passed" if report.must_all_pass() else
               f"{must_fail} MUST failed" if must_fail else f"{must_skip} MUST skipped (not a pass)")
    lines = [f"AMP conformance: {len(report.results)} checks, {report.requests_sent} requests, "
             f"{report.elapsed_ms / 1000:.1f} s",
             f"{report.count(Outcome.PASS)} passed, {report.count(Outcome.FAIL)} failed, "
             f"{report.count(Outcome.SKIPPED)} skipped: {verdict}"]
    fails = [r for r in report.results if r.outcome is Outcome.FAIL]
    if fails:
        lines.append("")
        width = max(len(r.spec.id) for r in fails)
        for r in fails:
            section = SECTIONS.get(r.spec.group, r.spec.group)
            lines.append(f"  FAIL {r.spec.level:<6} {r.spec.id:<{width}}  {section}"[:80])
    return lines


def print_summary(console: Console, report: Report) -> None:
    for line in summary_lines(report):
        console.print(terminal_safe(line), highlight=False, soft_wrap=True)


def print_details(console: Console, report: Report) -> None:
    """Every check in the order it ran: outcome, level, id, then what the target answered."""
    console.print("\n[bold]Details[/] (every check; FAIL evidence follows)", highlight=False)
    for r in report.results:
        console.print(f"[{_STYLE[r.outcome]}]{r.outcome.value:<7}[/] {r.spec.level:<6} {terminal_safe(r.spec.id)}",
                      highlight=False)
        reason = Text(terminal_plain(r.reason), style="dim" if r.outcome is Outcome.PASS else "")
        console.print(Padding(reason, (0, 0, 0, 8)), highlight=False)
    for note in report.notes:
        console.print(f"[dim]note: {terminal_safe(note)}[/]", highlight=False)


def print_evidence(console: Console, report: Report) -> None:
    """For every FAIL: what the rule is and the exact exchanges (secrets redacted)."""
    for r in report.results:
        if r.outcome is not Outcome.FAIL:
            continue
        lines = [f"[bold]{terminal_safe(r.spec.title)}[/]", f"{r.spec.level}, {terminal_safe(r.spec.source)}",
                 f"[red]{terminal_safe(r.reason)}[/]"]
        for e in r.exchanges:
            lines.append(f"\n{e.method} {terminal_safe(e.url)}" + (f"  ({terminal_safe(e.note)})" if e.note else ""))
            if e.request is not None:
                lines.append(terminal_safe(json.dumps(e.request, ensure_ascii=False)))
            lines.append(f"-> HTTP {e.status}: " + terminal_safe(json.dumps(e.response, ensure_ascii=False)))
        console.print(Panel("\n".join(lines), title=f"FAIL {terminal_safe(r.spec.id)}", border_style="red"))


def print_report(console: Console, report: Report) -> None:
    """Summary first, then details, then the evidence; the summary again when there was evidence to scroll."""
    print_summary(console, report)
    print_details(console, report)
    print_evidence(console, report)
    if report.count(Outcome.FAIL):
        console.print()
        console.print(terminal_safe(summary_lines(report)[1]), highlight=False)
