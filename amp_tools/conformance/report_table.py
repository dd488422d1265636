"""The terminal report: a table that grows as checks finish (rich Live), then the evidence of each FAIL."""

from __future__ import annotations

import json
from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.spinner import Spinner
from rich.table import Table

from amp_tools.conformance.model import CheckResult, CheckSpec, Outcome, Report
from amp_tools.terminal import terminal_safe

__all__ = ["LiveTable", "print_evidence", "print_summary"]

_STYLE = {Outcome.PASS: "green", Outcome.FAIL: "bold red", Outcome.SKIPPED: "yellow"}


def _table(results: list[CheckResult], total: int) -> Table:
    table = Table(title=f"AMP conformance: {len(results)}/{total} checks", expand=True)
    table.add_column("result", no_wrap=True)
    table.add_column("level", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("spec", ratio=1)
    table.add_column("detail", ratio=2)
    for r in results:
        table.add_row(f"[{_STYLE[r.outcome]}]{r.outcome.value}[/]", r.spec.level, terminal_safe(r.spec.id),
                      terminal_safe(r.spec.source), terminal_safe(r.reason))
    return table


class LiveTable:
    """Context manager; pass `started` / `finished` to `run_conformance` as on_start / on_result."""

    def __init__(self, console: Console, total: int) -> None:
        self.console = console
        self.total = total
        self.results: list[CheckResult] = []
        self.current: CheckSpec | None = None
        self._live = Live(self._render(), console=console, refresh_per_second=8, transient=False)

    def _render(self) -> Group:
        parts: list[Table | Spinner] = [_table(self.results, self.total)]
        if self.current is not None:
            parts.append(Spinner("dots", text=f"{self.current.id}: {self.current.title}"))
        return Group(*parts)

    def started(self, spec: CheckSpec) -> None:
        self.current = spec
        self._live.update(self._render())

    def finished(self, result: CheckResult) -> None:
        self.results.append(result)
        self.current = None
        self._live.update(self._render())

    def __enter__(self) -> LiveTable:
        self._live.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.current = None
        self._live.update(self._render())
        self._live.__exit__(exc_type, exc, tb)


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


def print_summary(console: Console, report: Report) -> None:
    must_fail, must_skip = report.count(Outcome.FAIL, "MUST"), report.count(Outcome.SKIPPED, "MUST")
    verdict = ("[bold green]every MUST passed[/]" if report.must_all_pass() else
               f"[bold red]{must_fail} MUST failed[/]" if must_fail else f"[yellow]{must_skip} MUST skipped[/]")
    console.print(f"{report.count(Outcome.PASS)} passed, {report.count(Outcome.FAIL)} failed, "
                  f"{report.count(Outcome.SKIPPED)} skipped; {verdict}; {report.requests_sent} requests in "
                  f"{report.elapsed_ms / 1000:.1f} s", highlight=False)
    for note in report.notes:
        console.print(f"[dim]{terminal_safe(note)}[/]", highlight=False)
