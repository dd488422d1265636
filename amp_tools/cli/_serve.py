"""CLI commands of the owner's web app: ``amp-tools serve`` and the shared approval store's extras.

`register(app, approvals_app)` adds ``serve`` to the main command and ``reopen`` / ``import`` to
``amp-tools approvals``. The passphrase is never kept in plain text: it is hashed with scrypt at
start (from ``AMP_TOOLS_INBOX_PASSPHRASE``), given as a hash (``--passphrase-hash`` or
``AMP_TOOLS_INBOX_PASSPHRASE_HASH``), or generated and printed once.
"""

from __future__ import annotations

import getpass
import os
import secrets
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from amp_tools import config
from amp_tools.cli._help import LedgerOpt, examples
from amp_tools.cli._ports import require_free_port
from amp_tools.errors import ConfigError
from amp_tools.terminal import terminal_safe

__all__ = ["open_store", "register"]

out = Console()
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def open_store(ledger: str | None = None, owner_key_file: Path | None = None) -> Any:
    """The approval store in the ledger's database; an old ``approvals.db`` in the home is imported first
    and stale questions are expired. Decisions are signed with the owner's key when there is one
    (`owner_key_file`, ``AMP_TOOLS_OWNER_KEY_FILE`` or the default from `amp-tools owner init`)."""
    from amp_tools.approvals import ApprovalStore
    from amp_tools.approvals.store import has_legacy_table
    from amp_tools.owner import load_owner_signer

    store = ApprovalStore(ledger or config.ledger_url(), owner_signer=load_owner_signer(owner_key_file))
    legacy = config.home_dir() / "approvals.db"
    if (legacy.exists() and legacy.resolve() != Path(str(getattr(store.ledger, "path", ""))).resolve()
            and has_legacy_table(str(legacy))):
        store.import_legacy(legacy)  # idempotent: rows already imported are skipped
    store.expire_due()  # questions nobody answered in time are denied (and audited) before anyone looks
    return store


def _passphrase_hash(given: str | None) -> tuple[str, str | None]:
    """(hash, a generated token to print once or None)."""
    from amp_tools.server.auth import check_hash, hash_secret

    if given:
        return check_hash(given), None
    if os.environ.get("AMP_TOOLS_INBOX_PASSPHRASE_HASH"):
        return check_hash(os.environ["AMP_TOOLS_INBOX_PASSPHRASE_HASH"]), None
    plain = os.environ.pop("AMP_TOOLS_INBOX_PASSPHRASE", None)
    if plain:
        return hash_secret(plain), None
    token = secrets.token_urlsafe(18)
    return hash_secret(token), token


def webhook_from_env(store: Any, url: str | None, fmt: str | None, console_url: str) -> Any:
    """The webhook of `url` (or ``AMP_TOOLS_WEBHOOK_URL``) with ``AMP_TOOLS_WEBHOOK_SECRET``, delivering only when
    asked (its outbox rows are found by the URL and secret, which are never written down); None without a URL."""
    from amp_tools.approvals import WebhookApprover

    url = url or os.environ.get("AMP_TOOLS_WEBHOOK_URL")
    if not url:
        return None
    secret = os.environ.get("AMP_TOOLS_WEBHOOK_SECRET", "")
    if not secret:
        raise ConfigError("a webhook needs AMP_TOOLS_WEBHOOK_SECRET (16+ bytes; the same one the agent uses)")
    chosen = fmt or os.environ.get("AMP_TOOLS_WEBHOOK_FORMAT") or "json"
    return WebhookApprover(store, url, secret, fmt=chosen,  # type: ignore[arg-type]  # checked by the approver
                           inbox_url=console_url, token=os.environ.get("AMP_TOOLS_WEBHOOK_TOKEN") or None,
                           background=False)


def register(app: typer.Typer, approvals_app: typer.Typer) -> None:
    @app.command("serve", epilog=examples("amp-tools serve", "amp-tools serve --port 8787 --login-link",
                                          "amp-tools serve --hash-passphrase"))
    def serve(
        ledger: LedgerOpt = None,
        host: Annotated[str, typer.Option(metavar="HOST", help="Interface to bind; loopback by default.")]
        = "127.0.0.1",
        port: Annotated[int, typer.Option(metavar="PORT", help="TCP port.")] = 8787,
        policy: Annotated[Path | None, typer.Option(metavar="PATH", hidden=True, help="No longer used: each budget's "
                                                                                      "limits come from its stored "
                                                                                      "policy.")] = None,
        passphrase_hash: Annotated[str | None, typer.Option(metavar="HASH", help="scrypt hash of the login "
                                                                                 "passphrase (see "
                                                                                 "--hash-passphrase).")] = None,
        hash_passphrase: Annotated[bool, typer.Option("--hash-passphrase", help="Ask for a passphrase, print its "
                                                      "hash and exit.")] = False,
        network_url: Annotated[str | None, typer.Option(metavar="URL", help="The wallet network's base URL, to "
                                                                            "revoke mandates (the sandbox: "
                                                                            "http://127.0.0.1:8765/network).")]
        = None,
        allow_host: Annotated[list[str] | None, typer.Option(metavar="HOST", help="Another host name this app may "
                                                                                  "be reached by (behind a proxy; "
                                                                                  "repeatable).")] = None,
        secure_cookies: Annotated[bool, typer.Option("--secure-cookies", help="Mark cookies Secure (when served "
                                                                              "over HTTPS).")] = False,
        owner_key_file: Annotated[Path | None, typer.Option(metavar="PATH", help="The owner's private key: "
                                                            "approvals, denials, reopenings and freezes made here are "
                                                            "signed with it (default: the key `amp-tools owner init` "
                                                            "created, if any).")] = None,
        login_link: Annotated[bool, typer.Option("--login-link", help="Print a one-time login link for the running "
                                                 "console (works while logins are throttled) and exit.")] = False,
        public_url: Annotated[str | None, typer.Option(metavar="URL", help="The console's address as people reach "
                                                       "it (links in notifications and --login-link).")] = None,
        webhook_url: Annotated[str | None, typer.Option(metavar="URL", help="Deliver the approval notifications "
                                                        "queued for this webhook (default AMP_TOOLS_WEBHOOK_URL; "
                                                        "secret from AMP_TOOLS_WEBHOOK_SECRET).")] = None,
        webhook_format: Annotated[str | None, typer.Option(metavar="FORMAT", help="json, slack or ntfy (default "
                                                           "AMP_TOOLS_WEBHOOK_FORMAT or json).")] = None,
    ) -> None:
        """Serve the approval inbox and spending dashboard for the budget owner."""
        from amp_tools.server.auth import hash_secret

        if hash_passphrase:
            plain = getpass.getpass("Passphrase (12+ characters): ")
            sys.stdout.write(hash_secret(plain) + "\n")
            return
        shown = f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}"
        console_url = public_url or shown
        if login_link:
            from amp_tools.ledger import open_ledger
            from amp_tools.server.recovery import LINK_TTL, create_link

            target = open_ledger(ledger or config.ledger_url())
            try:
                link = create_link(target, console_url)
            finally:
                target.close_sync()
            out.print(f"one-time login link (works once, for {int(LINK_TTL.total_seconds() // 60)} minutes):",
                      highlight=False)
            sys.stdout.write(link + "\n")
            return
        import uvicorn

        from amp_tools.ledger import open_ledger
        from amp_tools.server import ServeSettings, create_app

        if not 1 <= port <= 65535:
            raise ConfigError(f"--port {port} must be between 1 and 65535")
        require_free_port(host, port)  # before anything is printed: no login token for a server that cannot start
        digest, token = _passphrase_hash(passphrase_hash)
        if policy is not None:
            raise ConfigError("serve --policy no longer decides any budget's limits: each budget is shown with its "
                              "stored policy", hint="Store a budget's policy with `amp-tools budgets create ID "
                                                    "--policy FILE` or change it with `amp-tools budgets set-policy`.")
        led = open_ledger(ledger or config.ledger_url())
        store = open_store(ledger, owner_key_file)
        if store.owner_signer is not None:
            out.print(f"owner decisions are signed with key {store.owner_signer.kid}", highlight=False)
        hosts = (*_LOOPBACK[:2], "[::1]", *(allow_host or ()), *(() if host in _LOOPBACK else (host,)))
        hook = webhook_from_env(store, webhook_url, webhook_format, console_url)
        settings = ServeSettings(ledger=led, store=store, passphrase_hash=digest,
                                 network_url=network_url, secure_cookies=secure_cookies, allowed_hosts=hosts,
                                 courier=None if hook is None else hook.courier)
        if host not in _LOOPBACK:
            out.print(f"[yellow]warning:[/] listening on {terminal_safe(host)}: anyone who can reach it sees the "
                      "login page; put it behind HTTPS and use --secure-cookies")
        out.print(f"amp-tools owner console on {shown}/", highlight=False)
        if hook is not None:
            out.print(f"delivering approval notifications to {hook.host} ({hook.fmt})", highlight=False)
        if token:
            out.print(f"login token (shown once, not stored): {token}", highlight=False)
        try:
            uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")
        finally:
            store.close()
            led.close_sync()

    @approvals_app.command("reopen", epilog=examples("amp-tools approvals reopen apr_3f9c2a1b4d5e6f70 --by alice"))
    def approvals_reopen(approval_id: Annotated[str, typer.Argument(metavar="ID", help="The denied request's id, "
                                                                                       "from `amp-tools approvals "
                                                                                       "list --status denied`.")],
                         ledger: LedgerOpt = None,
                         by: Annotated[str, typer.Option(metavar="NAME", help="Who reopens (kept in the audit "
                                                                              "trail).")] = "cli") -> None:
        """Lift a denial so the agent may ask again about the same payment."""
        rec = open_store(ledger).reopen(approval_id, by)
        out.print(f"reopened {terminal_safe(rec.id)}: the agent may ask again", highlight=False)

    @approvals_app.command("deliver", epilog=examples(
        "amp-tools approvals deliver --webhook-url https://ntfy.sh/TOPIC --webhook-format ntfy"))
    def approvals_deliver(
        ledger: LedgerOpt = None,
        webhook_url: Annotated[str | None, typer.Option(metavar="URL", help="The webhook (default "
                                                        "AMP_TOOLS_WEBHOOK_URL; secret from "
                                                        "AMP_TOOLS_WEBHOOK_SECRET).")] = None,
        webhook_format: Annotated[str | None, typer.Option(metavar="FORMAT", help="json, slack or ntfy.")] = None,
        public_url: Annotated[str | None, typer.Option(metavar="URL", help="The console's address, for links.")]
        = None,
    ) -> None:
        """Try now every approval notification due for the webhook, and say how each stands."""
        import asyncio

        store = open_store(ledger)
        try:
            hook = webhook_from_env(store, webhook_url, webhook_format, public_url or "")
            if hook is None:
                raise ConfigError("say which webhook: --webhook-url URL or AMP_TOOLS_WEBHOOK_URL")
            done = asyncio.run(hook.deliver_due())
        finally:
            store.close()
        if not done:
            out.print("nothing is due for delivery", highlight=False)
        for item in done:
            out.print(terminal_safe(f"{item.approval_id} -> {item.host}: {item.status} after {item.attempts} "
                                    f"attempt(s){': ' + item.error if item.error else ''}"), highlight=False)

    @approvals_app.command("deliveries", epilog=examples("amp-tools approvals deliveries"))
    def approvals_deliveries(
        ledger: LedgerOpt = None,
    ) -> None:
        """List approval notifications: queued, delivered or failed (and why)."""
        from rich.table import Table

        from amp_tools.approvals.outbox import list_steps

        store = open_store(ledger)
        try:
            rows = store.ledger.run_read_sync(lambda: list_steps(100))
        finally:
            store.close()
        table = Table(title=f"approval notifications ({len(rows)})")
        for col in ("approval", "to", "format", "status", "attempts", "last answer", "updated (UTC)"):
            table.add_column(col)
        for d in rows:
            table.add_row(*(terminal_safe(str(v)) for v in (
                d.approval_id, d.host, d.format, d.status, d.attempts,
                d.error or ("-" if d.http_status is None else f"HTTP {d.http_status}"),
                d.updated_at.strftime("%Y-%m-%d %H:%M:%S"))))
        out.print(table)

    @approvals_app.command("import", epilog=examples("amp-tools approvals import ~/.amp-tools/approvals.db"))
    def approvals_import(path: Annotated[Path, typer.Argument(metavar="PATH", help="An old approvals.db file.")],
                         ledger: LedgerOpt = None) -> None:
        """Copy the requests of an old standalone approvals.db into the ledger's database."""
        count = open_store(ledger).import_legacy(path)
        out.print(f"imported {count} approval request(s) from {terminal_safe(path)}", highlight=False)
