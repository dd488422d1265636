"""`amp-tools budgets ...` (the owner's commands for stored budgets) and `amp-tools ledger tree`.

A budget is an object in the ledger, held by its owner: `budgets create ID --policy FILE` stores it,
`budgets set-policy` versions it (showing the diff and asking first; `--yes` for scripts), `budgets
history` lists every version with who, when and what changed, `budgets freeze` / `unfreeze` stop and
resume every payment, `budgets list` / `show` print the stored policy, what each level and window has
used and has left, and the approvals waiting. `ledger tree ID` draws a budget and its sub-budgets with
each level's stored limit, before any payment too.

Every text that came from someone else (budget ids, names, notes, reasons, merchant names) is cleaned
of control characters and escaped for rich markup before it reaches the terminal.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from amp_tools import config
from amp_tools.cli._help import LedgerOpt, examples
from amp_tools.errors import ConfigError, NotFound
from amp_tools.money import Money
from amp_tools.terminal import terminal_safe
from amp_tools.untrusted import clean_text

__all__ = ["budgets_app", "ledger_tree", "print_tree"]

_out = Console()
budgets_app = typer.Typer(help="The owner's budgets: create, change the policy, freeze, inspect.",
                          no_args_is_help=True)

ByOpt = Annotated[str | None, typer.Option("--by", metavar="NAME",
                                           help="Who is acting, for the audit (default: your user name).")]
PolicyOpt = Annotated[Path, typer.Option("--policy", metavar="PATH",
                                         help="The policy file (.yaml, .yml, .toml or .json).")]
NoteOpt = Annotated[str, typer.Option(metavar="TEXT", help="A note kept with this version.")]
IdArg = Annotated[str, typer.Argument(metavar="ID", help="The budget id, e.g. alice or team.", show_default=False)]


def _safe(value: object) -> str:
    """Untrusted text for the terminal: printable, one line, rich markup escaped."""
    return terminal_safe(clean_text(value))


def _by(by: str | None) -> str:
    if by is not None:
        return by
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        raise ConfigError("could not tell who you are; pass --by NAME") from None


def _open(ledger: str | None, *, existing: bool) -> Any:
    from amp_tools.cli._paths import existing_ledger
    from amp_tools.ledger import open_ledger

    return open_ledger(existing_ledger(ledger) if existing else (ledger or config.ledger_url()))


def _stored(led: Any, budget_id: str) -> Any:
    stored = led.get_budget_sync(budget_id)
    if stored is None:
        raise NotFound(f"budget {budget_id!r} is not a stored budget in this ledger",
                       hint=f"Create it with `amp-tools budgets create {budget_id} --policy FILE`.")
    return stored


def _money(value: Any) -> str:
    if isinstance(value, dict):
        return f"{value.get('amount')} {value.get('currency')}"
    return str(value) if value is not None else "-"


def _report(led: Any, stored: Any, covers: tuple[str, ...] | None) -> dict[str, Any]:
    report: dict[str, Any] = led.usage_report_sync(stored.policy, stored.budget_id, covers=covers)
    return report


def _covers(stored: Any) -> tuple[str, ...] | None:
    if not stored.policy.agents:
        return None
    from amp_tools.policy.subbudgets import BudgetPath

    return tuple(BudgetPath.of(stored.policy, stored.budget_id).leaf.covers)


def _frozen_text(stored: Any) -> str:
    if not stored.frozen:
        return "no"
    return f"[bold red]FROZEN[/] by {_safe(stored.frozen_by or '?')}: {_safe(stored.frozen_reason or 'no reason')}"


# ---------------------------------------------------------------------------- budgets list / show
@budgets_app.command("list", epilog=examples("amp-tools budgets list", "amp-tools budgets list --ledger postgresql://db/amp"))
def budgets_list(ledger: LedgerOpt = None) -> None:
    """Every stored budget: policy version, used of total, left, frozen."""
    led = _open(ledger, existing=True)
    try:
        rows = led.list_budgets_sync()
        table = Table(title=f"budgets ({len(rows)})", box=box.SIMPLE_HEAD)
        # Amounts never wrap (a folded amount misreads): the id folds instead; a sub-budget's id
        # carries its parent (crew/agent), and who set the policy is in `budgets show`.
        table.add_column("budget", overflow="fold", min_width=12)
        for col in ("v", "used / total", "left", "frozen"):
            table.add_column(col, no_wrap=True)
        for stored in rows:
            total = _report(led, stored, _covers(stored))["total"]
            used, limit, left = total.get("used"), total.get("limit"), total.get("left")
            amounts = (f"{used['amount']} / {_money(limit)}" if isinstance(used, dict) and isinstance(limit, dict)
                       else _money(used))
            table.add_row(_safe(stored.budget_id), str(stored.policy_version), amounts, _money(left),
                          "[bold red]FROZEN[/]" if stored.frozen else "no")
        _out.print(table)
    finally:
        led.close_sync()


@budgets_app.command("show", epilog=examples("amp-tools budgets show alice"))
def budgets_show(budget_id: IdArg, ledger: LedgerOpt = None) -> None:
    """The stored policy, its version, used / left per level and window, frozen, and pending approvals."""
    from amp_tools.policy.diff import diff_policies
    from amp_tools.policy.subbudgets import agent_names

    led = _open(ledger, existing=True)
    try:
        stored = _stored(led, budget_id)
        policy = stored.policy
        _out.print(f"[bold]budget {_safe(stored.budget_id)}[/] ({stored.currency})"
                   + (f", under {_safe(stored.parent)}" if stored.parent else ""), highlight=False)
        _out.print(f"policy version {stored.policy_version} ({stored.policy_hash[:12]}), set by "
                   f"{_safe(stored.updated_by)} at {stored.updated_at.isoformat()}; created by "
                   f"{_safe(stored.created_by)}; signed: {'yes' if stored.signed else 'no'}", highlight=False)
        _out.print(f"frozen: {_frozen_text(stored)}", highlight=False)
        levels = [stored] + [s for s in (led.get_budget_sync(f"{stored.budget_id}/{a}") for a in agent_names(policy))
                             if s is not None]
        table = Table(title="used and left")
        for col in ("level", "limit", "window", "used", "left"):
            table.add_column(col, overflow="fold")
        for level in levels:
            covers = _covers(stored) if level is stored else None
            report = _report(led, level, covers)
            name = _safe(level.budget_id)
            total = report["total"]
            table.add_row(name, "total", "all time", _money(total.get("used")), _money(total.get("left")))
            if level.policy.per_transaction_max is not None:
                table.add_row(name, "per payment", "-", "-", _money(level.policy.per_transaction_max.to_public()))
            for period, window in report["windows"].items():
                table.add_row(name, _safe(period), f"since {window.get('since', '?')}", _money(window.get("used")),
                              _money(window.get("left")))
            velocity = report.get("velocity")
            if velocity:
                table.add_row(name, f"{velocity['limit']} payments", f"per {_safe(velocity['per'])}",
                              str(velocity["count"]), str(velocity["left"]))
        _out.print(table)
        _pending(led, stored.budget_id)
        _out.print("[bold]policy[/] (fields that are set)", highlight=False)
        for line in diff_policies(None, stored.policy_json):
            _out.print("  " + escape(clean_text(line.replace(": (not set) -> ", ": ", 1), 400)), highlight=False)
    finally:
        led.close_sync()


def _pending(led: Any, budget_id: str) -> None:
    from amp_tools.approvals import ApprovalStore

    store = ApprovalStore(led)
    mine = [r for r in store.list("pending")
            if r.budget_id == budget_id or r.budget_id.startswith(budget_id + "/")]
    if not mine:
        _out.print("pending approvals: none", highlight=False)
        return
    _out.print(f"pending approvals: {len(mine)}", highlight=False)
    for record in mine:
        first = record.request.summary().splitlines()[0]
        _out.print(f"  {_safe(record.id)} ({_safe(record.budget_id)}): {escape(clean_text(first))}", highlight=False)


# ---------------------------------------------------------------------------- create / set-policy / history
@budgets_app.command("create", epilog=examples(
    "amp-tools budgets create alice --policy policy.yaml --by alice"))
def budgets_create(budget_id: IdArg, policy: PolicyOpt, ledger: LedgerOpt = None, by: ByOpt = None,
                   parent: Annotated[str | None, typer.Option(metavar="ID",
                                                              help="The parent budget (a stored budget).")] = None,
                   note: NoteOpt = "") -> None:
    """Store a new budget from a policy file (version 1); its `agents:` become sub-budgets."""
    from amp_tools.policy import load_policy
    from amp_tools.toolkit.budget import store_sub_budgets

    loaded = load_policy(policy)
    who = _by(by)
    led = _open(ledger, existing=False)
    try:
        stored = led.create_budget_sync(budget_id, loaded, by=who, parent=parent, note=note)
        _sign_version(led, budget_id)
        if loaded.agents:
            store_sub_budgets(led, stored, by=who)
        _out.print(f"created budget {_safe(stored.budget_id)}: policy version 1 ({stored.policy_hash[:12]}), "
                   f"{stored.policy.total_budget} in total, by {_safe(who)}", highlight=False)
    finally:
        led.close_sync()


@budgets_app.command("set-policy", epilog=examples(
    "amp-tools budgets set-policy alice --policy policy.yaml",
    "amp-tools budgets set-policy team --policy team.yaml --yes --by ci"))
def budgets_set_policy(budget_id: IdArg, policy: PolicyOpt, ledger: LedgerOpt = None, by: ByOpt = None,
                       yes: Annotated[bool, typer.Option("--yes", help="Do not ask to confirm (scripts).")] = False,
                       note: NoteOpt = "") -> None:
    """Store a new version of a budget's policy: prints the diff and asks to confirm."""
    from amp_tools.policy import load_policy
    from amp_tools.policy.diff import diff_policies
    from amp_tools.toolkit.budget import store_sub_budgets

    loaded = load_policy(policy)
    who = _by(by)
    led = _open(ledger, existing=True)
    try:
        stored = _stored(led, budget_id)
        _refuse_derived(led, stored)
        lines = diff_policies(stored.policy_json, loaded)
        if not lines:
            _out.print(f"budget {_safe(budget_id)} already has this policy (version {stored.policy_version}); "
                       "nothing changed", highlight=False)
            return
        _out.print(f"budget {_safe(budget_id)}: version {stored.policy_version} -> {stored.policy_version + 1}",
                   highlight=False)
        for line in lines:
            _out.print(f"  {escape(clean_text(line, 400))}", highlight=False)
        if not yes and not typer.confirm("Store this policy version?", default=False):
            _out.print("nothing changed", highlight=False)
            raise typer.Exit(1)
        newer = led.set_policy_sync(budget_id, loaded, by=who, expected_version=stored.policy_version, note=note)
        _sign_version(led, budget_id)
        if newer.policy.agents:
            store_sub_budgets(led, newer, by=who)
        _out.print(f"stored policy version {newer.policy_version} of budget {_safe(budget_id)} "
                   f"({newer.policy_hash[:12]}), by {_safe(who)}", highlight=False)
    finally:
        led.close_sync()


def _refuse_derived(led: Any, stored: Any) -> None:
    """A sub-budget declared under its parent's `agents:` is governed by the parent's policy: changing it
    alone would show limits nobody enforces."""
    if stored.parent is None:
        return
    parent = led.get_budget_sync(stored.parent)
    name = stored.budget_id.removeprefix(stored.parent + "/")
    if parent is not None and name in parent.policy.agents:
        raise ConfigError(f"budget {stored.budget_id!r} is the sub-budget agents.{name} of {stored.parent!r}'s policy; "
                          f"change it there: amp-tools budgets set-policy {stored.parent} --policy FILE")


@budgets_app.command("history", epilog=examples("amp-tools budgets history alice"))
def budgets_history(budget_id: IdArg, ledger: LedgerOpt = None) -> None:
    """Every version of a budget's policy: when, by whom, the note and what changed."""
    led = _open(ledger, existing=True)
    try:
        _stored(led, budget_id)
        for version in led.policy_history_sync(budget_id):
            _out.print(f"[bold]version {version.version}[/] {version.created_at.isoformat()} by "
                       f"{_safe(version.created_by)} ({version.policy_hash[:12]}"
                       f"{', signed' if version.signature else ''})"
                       + (f": {_safe(version.note)}" if version.note else ""), highlight=False)
            for line in version.diff:
                _out.print(f"  {escape(clean_text(line, 400))}", highlight=False)
    finally:
        led.close_sync()


def _sign_version(led: Any, budget_id: str) -> None:
    """Sign the version just stored with the owner's key, if `amp-tools owner init` made one."""
    from amp_tools.owner import load_owner_signer
    from amp_tools.owner.decisions import sign_policy_steps

    signer = load_owner_signer()
    if signer is None:
        return
    at = led.clock.now()
    signed = led.run_write_sync(lambda: sign_policy_steps(led.dialect, signer, budget_id, None, now=at))
    _out.print(f"signed policy version {signed['version']} with the owner key {signer.kid}", highlight=False)


# ---------------------------------------------------------------------------- freeze / unfreeze
def _freeze(budget_id: str, frozen: bool, ledger: str | None, by: str | None, reason: str) -> None:
    from amp_tools.owner import load_owner_signer
    from amp_tools.owner.decisions import freeze_signed_steps

    who = _by(by)
    signer = load_owner_signer()  # the owner's key, if `amp-tools owner init` made one: the control is signed
    led = _open(ledger, existing=True)
    try:
        _stored(led, budget_id)
        at = led.clock.now()
        led.run_write_sync(lambda: freeze_signed_steps(led.dialect, signer, budget_id, frozen, by=who, reason=reason,
                                                       now=at))
        word = "froze" if frozen else "unfroze"
        _out.print(f"{word} budget {_safe(budget_id)} (by {_safe(who)})"
                   + (f": {_safe(reason)}" if reason else ""), highlight=False)
    finally:
        led.close_sync()


@budgets_app.command("freeze", epilog=examples('amp-tools budgets freeze alice --reason "card lost"'))
def budgets_freeze(budget_id: IdArg,
                   reason: Annotated[str, typer.Option("--reason", metavar="TEXT",
                                                       help="Why (shown to the agent and in the audit).")],
                   ledger: LedgerOpt = None, by: ByOpt = None) -> None:
    """Refuse every payment from this budget until it is unfrozen."""
    _freeze(budget_id, True, ledger, by, reason)


@budgets_app.command("unfreeze", epilog=examples("amp-tools budgets unfreeze alice --by alice"))
def budgets_unfreeze(budget_id: IdArg, ledger: LedgerOpt = None, by: ByOpt = None,
                     reason: Annotated[str, typer.Option("--reason", metavar="TEXT",
                                                         help="Why (for the audit).")] = "") -> None:
    """Let this budget pay again."""
    _freeze(budget_id, False, ledger, by, reason)


# ---------------------------------------------------------------------------- ledger tree
def print_tree(ledger: str | None, budget: str, policy_file: Path | None = None) -> None:
    """Print `budget` and every sub-budget under it with used / limit / left, limits from the stored policies."""
    if policy_file is not None:
        raise ConfigError("--policy is no longer used by `ledger tree`: each budget's limits come from its stored "
                          "policy (see `amp-tools budgets show`)")
    led = _open(ledger, existing=True)
    try:
        rows = led.budget_tree_sync(budget)
        if not rows:
            raise NotFound(f"budget {budget!r} is not in this ledger",
                           hint=f"Create it with `amp-tools budgets create {budget} --policy FILE`.")
        stored = {b.budget_id: b for b in led.list_budgets_sync()}
    finally:
        led.close_sync()
    nodes: dict[str, Tree] = {}
    root = Tree(f"[bold]budgets under {_safe(budget)}[/bold]")
    for budget_id, parent, currency, used, count in rows:
        name = budget_id if parent is None else budget_id.rsplit("/", 1)[-1]
        text = f"{_safe(name)}  used {Money(used, currency)} ({count} payments)"
        level = stored.get(budget_id)
        if level is not None:
            limit = level.policy.total_budget
            left = Money(max(0, limit.minor - used), currency)
            text += f"  of {limit}, {left} left" + (" [bold red]FROZEN[/]" if level.frozen else "")
        holder = nodes.get(parent or "", root) if parent is not None else root
        nodes[budget_id] = holder.add(text)
    _out.print(root)


def ledger_tree(
    budget: Annotated[str, typer.Argument(metavar="ID", help="The crew's (root) budget id, e.g. trip or user:42.",
                                          show_default=False)],
    ledger: LedgerOpt = None,
    policy: Annotated[Path | None, typer.Option(metavar="PATH", hidden=True, help="No longer used: limits are the "
                                                                                  "stored policy's.")] = None,
) -> None:
    """Show a budget and its sub-budgets as a tree: used, each level's stored limit and what is left."""
    print_tree(ledger, budget, policy)
