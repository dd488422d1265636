"""The ``amp-tools mcp`` command: options, start-up checks, which transport runs, and its tokens.

Imports only typer at module level, so the CLI loads without the ``[mcp]`` extra; the SDK is
imported when the server runs, and its absence is one readable error line. In stdio mode
stdout belongs to the protocol, so everything for a person goes to stderr.

``amp-tools mcp tokens create|list|revoke`` manage the HTTP transport's bearer tokens (each bound
to one budget, stored hashed in the ledger); ``amp-tools mcp --print-config CLIENT`` prints a
client configuration that starts this very install (absolute paths, no reliance on PATH).
"""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from amp_tools import config
from amp_tools.cli._help import LedgerOpt, examples
from amp_tools.errors import ConfigError
from amp_tools.untrusted import clean_text

__all__ = ["client_config", "mcp_app"]

_INSTALL_HINT = "install the MCP extra: pip install 'amp-agent-payments[mcp]'"
_CLIENTS = ("claude", "cursor", "vscode")
_MODES = ("auto", "cli", "form")

mcp_app = typer.Typer(help="Serve the guarded shopping and payment tools over MCP, and manage its HTTP tokens.\n\n"
                           "Examples: amp-tools mcp --budget-id travel --print-config claude\n\n"
                           "amp-tools mcp --transport http --budget-id travel (each client needs a token: "
                           "amp-tools mcp tokens create --budget travel)",
                      add_completion=False)
tokens_app = typer.Typer(help="Bearer tokens of `amp-tools mcp --transport http`, each bound to one budget.",
                         no_args_is_help=True)
mcp_app.add_typer(tokens_app, name="tokens")


def client_config(client: str, args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """A client's MCP configuration that runs `python -m amp_tools.mcp ARGS` with this interpreter."""
    server: dict[str, Any] = {"command": sys.executable, "args": ["-m", "amp_tools.mcp", *args]}
    if env:
        server["env"] = env
    if client == "vscode":
        return {"servers": {"amp-tools": {"type": "stdio", **server}}}
    return {"mcpServers": {"amp-tools": server}}  # Claude Desktop and Cursor read the same shape


def _absolute(value: str) -> str:
    """A path made absolute; a URL (``postgresql://``, ``sqlite:///``) as given."""
    return value if "://" in value or value == ":memory:" else str(Path(value).expanduser().resolve())


@mcp_app.callback(invoke_without_command=True)
def mcp_command(
    ctx: typer.Context,
    policy: Annotated[Path | None, typer.Option("--policy", metavar="PATH",
                                                help="Budget policy file (.yaml, .toml or .json): creates the "
                                                     "budget if it is new, else must equal its stored policy "
                                                     "(default: the policy stored in the ledger).")] = None,
    ledger: Annotated[str | None, typer.Option("--ledger", metavar="PATH|URL",
                                               help="Ledger path or URL (default: AMP_TOOLS_LEDGER_URL or "
                                                    "$AMP_TOOLS_HOME/ledger.db).")] = None,
    sandbox: Annotated[bool, typer.Option("--sandbox", help="Use the embedded offline sandbox (the default when "
                                                            "no --cp is given).")] = False,
    cp: Annotated[str | None, typer.Option("--cp", metavar="URL",
                                           help="Credential Provider URL of a real AMP network.")] = None,
    merchants: Annotated[str | None, typer.Option("--merchants", metavar="PATH",
                                                  help="Merchant directory (YAML or JSON list) for a Credential "
                                                       "Provider without a merchant registry (default: "
                                                       "AMP_TOOLS_MERCHANTS).")] = None,
    budget_id: Annotated[str | None, typer.Option("--budget-id", metavar="ID",
                                                  help="Budget to spend from (default: AMP_TOOLS_BUDGET, else the "
                                                       "policy's name; the sandbox alone falls back to a fresh "
                                                       "'sandbox-...' id). Over HTTP each token's budget.")] = None,
    transport: Annotated[str, typer.Option(metavar="stdio|http",
                                           help="stdio (one client, e.g. Claude Desktop) or http (streamable HTTP "
                                                "at /mcp, bearer tokens, one session per client).")] = "stdio",
    host: Annotated[str, typer.Option(metavar="ADDRESS", help="Interface for --transport http.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="TCP port for --transport http.")] = 8000,
    approvals: Annotated[str, typer.Option(metavar="auto|cli|form",
                                           help="auto: send the person the approval's page in the owner console "
                                                "(URL elicitation) when the client supports it, else wait for the "
                                                "inbox or `amp-tools approvals`; cli: never elicit; form: ask "
                                                "through the client's own form, which trusts the MCP client's "
                                                "UI.")] = "auto",
    console_url: Annotated[str | None, typer.Option("--console-url", metavar="URL",
                                                    help="Where `amp-tools serve` answers, for approval links "
                                                         "(default: AMP_TOOLS_CONSOLE_URL or "
                                                         "http://127.0.0.1:8787).")] = None,
    approval_wait: Annotated[float, typer.Option("--approval-wait", metavar="SECONDS",
                                                 help="How long a payment waits for the person's decision after "
                                                      "sending the approval link (kept under common client "
                                                      "timeouts).")] = 30.0,
    allow_remote: Annotated[bool, typer.Option("--allow-remote", help="Allow a --host other than loopback (needs "
                                                                      "--allowed-host).")] = False,
    allowed_host: Annotated[list[str] | None, typer.Option("--allowed-host", metavar="NAME",
                                                           help="A host name clients reach the server by; Host and "
                                                                "Origin headers are checked against these and "
                                                                "loopback (repeatable).")] = None,
    sessions_per_token: Annotated[int, typer.Option("--sessions-per-token", metavar="N",
                                                    help="Live HTTP sessions one token may hold.")] = 4,
    session_idle: Annotated[float, typer.Option("--session-idle", metavar="SECONDS",
                                                help="Close an HTTP session idle this long.")] = 900.0,
    owner_key: Annotated[str | None, typer.Option("--owner-key", metavar="JWK|PATH",
                                                  help="The budget owner's PUBLIC key (JWK JSON or a file; default: "
                                                       "AMP_TOOLS_OWNER_KEY): pay only on the owner's signed "
                                                       "policy and approvals.")] = None,
    print_config: Annotated[str | None, typer.Option("--print-config", metavar="claude|cursor|vscode",
                                                     help="Print a ready client configuration that starts this "
                                                          "install with these options, and exit.")] = None,
) -> None:
    """Serve the guarded shopping and payment tools over MCP (stdio or streamable HTTP)."""
    if ctx.invoked_subcommand is not None:
        return
    if sandbox and cp:
        raise ConfigError("--sandbox and --cp exclude each other", hint="Pass one: --sandbox for offline, --cp URL.")
    if transport not in ("stdio", "http"):
        raise ConfigError(f"unknown --transport {transport!r}; expected stdio or http")
    if approvals not in _MODES:
        raise ConfigError(f"unknown --approvals {approvals!r}; expected auto, cli or form")
    if not 0 < port < 65536:
        raise ConfigError(f"--port {port} is not a TCP port; expected 1 to 65535")
    if not 1 <= sessions_per_token <= 1000:
        raise ConfigError(f"--sessions-per-token {sessions_per_token} must be between 1 and 1000")
    if not 0 < session_idle <= 86_400 or not 0 <= approval_wait <= 3600:
        raise ConfigError("--session-idle must be 1 to 86400 seconds and --approval-wait 0 to 3600 seconds")
    if print_config is not None:
        if print_config not in _CLIENTS:
            raise ConfigError(f"unknown --print-config {print_config!r}; expected claude, cursor or vscode")
        args: list[str] = []
        for flag, value in (("--policy", policy and _absolute(str(policy))),
                            ("--ledger", ledger and _absolute(ledger)), ("--cp", cp),
                            ("--merchants", merchants and _absolute(merchants)), ("--budget-id", budget_id),
                            ("--console-url", console_url),
                            ("--owner-key", owner_key and (owner_key if owner_key.lstrip().startswith("{")
                                                           else _absolute(owner_key)))):
            if value:
                args += [flag, value]
        if approvals != "auto":
            args += ["--approvals", approvals]
        env = {"AMP_TOOLS_HOME": str(config.home_dir().resolve())}
        typer.echo(json.dumps(client_config(print_config, args, env), indent=2))
        return
    try:
        from amp_tools.mcp.run import HttpOptions, run
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] != "mcp":
            raise
        raise ConfigError("the mcp package is not installed", hint=_INSTALL_HINT) from None
    http = HttpOptions(host=host, port=port, allow_remote=allow_remote, allowed_hosts=tuple(allowed_host or ()),
                       sessions_per_token=sessions_per_token, idle_seconds=session_idle)
    run(policy, ledger=ledger, cp_url=cp, budget_id=budget_id, transport=transport,  # type: ignore[arg-type]
        approvals=approvals, http=http, merchants=merchants, console_url=console_url,  # type: ignore[arg-type]
        approval_wait=approval_wait, owner_key=owner_key)


def _tokens(ledger: str | None) -> Any:
    from amp_tools.ledger import open_ledger
    from amp_tools.mcp.tokens import TokenStore

    return TokenStore(open_ledger(ledger or config.ledger_url()))


_BY = typer.Option("--by", metavar="NAME", help="Who does this (recorded in the audit trail; default: your login).")


@tokens_app.command("create", epilog=examples(
    "amp-tools mcp tokens create --budget team-travel --label \"Alice's Cursor\""))
def tokens_create(
    budget: Annotated[str, typer.Option("--budget", metavar="ID", help="The one budget this token may spend.")],
    label: Annotated[str, typer.Option("--label", metavar="TEXT", help="What the token is for.")] = "",
    ledger: LedgerOpt = None,
    by: Annotated[str | None, _BY] = None,
) -> None:
    """Create a token for one budget; it is printed once and stored only as a hash."""
    store = _tokens(ledger)
    try:
        issued = store.create(budget, label=label, by=by or getpass.getuser())
    finally:
        store.ledger.close_sync()
    err = Console(stderr=True)
    err.print(f"MCP token {issued.record.token_id} for budget {escape(clean_text(budget))} (shown once; the "
              "client sends it as `Authorization: Bearer TOKEN`):", highlight=False, soft_wrap=True)
    typer.echo(issued.token)


@tokens_app.command("list", epilog=examples("amp-tools mcp tokens list --all"))
def tokens_list(
    ledger: LedgerOpt = None,
    all_: Annotated[bool, typer.Option("--all", help="Include revoked tokens.")] = False,
) -> None:
    """List tokens (ids, budgets, labels; never the tokens themselves)."""
    store = _tokens(ledger)
    try:
        records = store.list(include_revoked=all_)
    finally:
        store.ledger.close_sync()
    table = Table("budget", "label", "created by", "created (UTC)", "revoked")
    table.add_column("token id", no_wrap=True, min_width=12)
    for r in records:
        table.add_row(escape(clean_text(r.budget_id)), escape(clean_text(r.label)), escape(clean_text(r.created_by)),
                      f"{r.created_at:%Y-%m-%d %H:%M}", f"{r.revoked_at:%Y-%m-%d %H:%M}" if r.revoked_at else "",
                      r.token_id)
    Console().print(table if records else "No MCP tokens.")


@tokens_app.command("revoke", epilog=examples("amp-tools mcp tokens revoke 3f9c0a1b2c4d"))
def tokens_revoke(
    token_id: Annotated[str, typer.Argument(metavar="ID", help="The token id from `amp-tools mcp tokens list`.")],
    ledger: LedgerOpt = None,
    by: Annotated[str | None, _BY] = None,
) -> None:
    """Revoke a token: its next request is refused (401)."""
    store = _tokens(ledger)
    try:
        record = store.revoke(token_id, by=by or getpass.getuser())
    finally:
        store.ledger.close_sync()
    Console().print(f"MCP token {record.token_id} (budget {escape(clean_text(record.budget_id))}) is revoked.",
                    highlight=False)
