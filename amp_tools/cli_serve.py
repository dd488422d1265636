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
from amp_tools.errors import ConfigError

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


def register(app: typer.Typer, approvals_app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        ledger: Annotated[str | None, typer.Option("--ledger", help="Ledger path or URL (default: "
                                                   "AMP_TOOLS_LEDGER_URL or $AMP_TOOLS_HOME/ledger.db).")] = None,
        host: Annotated[str, typer.Option(help="Interface to bind; loopback by default.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="TCP port.")] = 8787,
        policy: Annotated[Path | None, typer.Option(hidden=True, help="No longer used: each budget's limits come "
                                                                      "from its stored policy.")] = None,
        passphrase_hash: Annotated[str | None, typer.Option(help="scrypt hash of the login passphrase (see "
                                                                 "--hash-passphrase).")] = None,
        hash_passphrase: Annotated[bool, typer.Option("--hash-passphrase", help="Ask for a passphrase, print its "
                                                      "hash and exit.")] = False,
        network_url: Annotated[str | None, typer.Option(help="The wallet network's base URL, to revoke mandates "
                                                        "(the sandbox: http://127.0.0.1:8765/network).")] = None,
        allow_host: Annotated[list[str] | None, typer.Option(help="Another host name this app may be reached "
                                                             "by (behind a proxy).")] = None,
        secure_cookies: Annotated[bool, typer.Option(help="Mark cookies Secure (when served over HTTPS).")] = False,
        owner_key_file: Annotated[Path | None, typer.Option(help="The owner's private key: approvals, denials, "
                                                            "reopenings and freezes made here are signed with it "
                                                            "(default: the key `amp-tools owner init` created, if "
                                                            "any).")] = None,
    ) -> None:
        """Serve the approval inbox and spending dashboard for the budget owner."""
        from amp_tools.server.auth import hash_secret

        if hash_passphrase:
            plain = getpass.getpass("Passphrase (12+ characters): ")
            sys.stdout.write(hash_secret(plain) + "\n")
            return
        import uvicorn

        from amp_tools.ledger import open_ledger
        from amp_tools.server import ServeSettings, create_app

        if not 1 <= port <= 65535:
            raise ConfigError(f"--port {port} must be between 1 and 65535")
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
        settings = ServeSettings(ledger=led, store=store, passphrase_hash=digest,
                                 network_url=network_url, secure_cookies=secure_cookies, allowed_hosts=hosts)
        if host not in _LOOPBACK:
            out.print(f"[yellow]warning:[/] listening on {host}: anyone who can reach it sees the login page; "
                      "put it behind HTTPS and use --secure-cookies")
        out.print(f"amp-tools owner console on http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}/",
                  highlight=False)
        if token:
            out.print(f"login token (shown once, not stored): {token}", highlight=False)
        try:
            uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")
        finally:
            store.close()
            led.close_sync()

    @approvals_app.command("reopen")
    def approvals_reopen(approval_id: str, by: Annotated[str, typer.Option(help="Who reopens.")] = "cli") -> None:
        """Lift a denial so the agent may ask again about the same payment."""
        rec = open_store().reopen(approval_id, by)
        out.print(f"reopened {rec.id}: the agent may ask again", highlight=False)

    @approvals_app.command("import")
    def approvals_import(path: Annotated[Path, typer.Argument(help="An old approvals.db file.")],
                         ledger: Annotated[str | None, typer.Option("--ledger", help="Ledger path or URL.")] = None
                         ) -> None:
        """Copy the requests of an old standalone approvals.db into the ledger's database."""
        count = open_store(ledger).import_legacy(path)
        out.print(f"imported {count} approval request(s) from {path}", highlight=False)
