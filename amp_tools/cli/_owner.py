"""``amp-tools owner``: the budget owner's signing key (create it, print its public half to pin)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from amp_tools.cli._help import LedgerOpt, examples
from amp_tools.errors import NotFound
from amp_tools.owner import OwnerKey
from amp_tools.owner.keys import default_owner_key_path

__all__ = ["owner_app"]

owner_app = typer.Typer(help="The budget owner's signing key (ES256): what agents pin to trust your decisions.",
                        no_args_is_help=True)
err = Console(stderr=True)
PathOpt = Annotated[Path | None, typer.Option("--path", metavar="PATH", help="Private key file (default "
                                                             "$AMP_TOOLS_HOME/owner/owner-key.jwk).")]


@owner_app.command("init", epilog=examples("amp-tools owner init",
                                           "amp-tools owner init --path owner-key.jwk"))
def owner_init(path: PathOpt = None) -> None:
    """Create the owner's private key (0600, in a 0700 directory) and print the public JWK to pin."""
    target = path or default_owner_key_path()
    key = OwnerKey.generate()
    written = key.save(target)
    err.print(f"owner key written to {written} (keep it on the owner's side; never give it to an agent)",
              highlight=False, markup=False)
    _print_public(key)


@owner_app.command("sign-policy", epilog=examples("amp-tools owner sign-policy alice",
                                                        "amp-tools owner sign-policy team --version 3 --yes"))
def owner_sign_policy(
    budget_id: Annotated[str, typer.Argument(metavar="ID", help="The budget whose stored policy version you sign.",
                                             show_default=False)],
    version: Annotated[int | None, typer.Option(metavar="N", help="The version to sign (default: the one in "
                                                                  "force).")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Sign without asking (scripts).")] = False,
    ledger: LedgerOpt = None,
    path: PathOpt = None,
) -> None:
    """Sign a stored policy version after showing it: agents pinned to your key then spend under it."""
    from amp_tools import config
    from amp_tools.ledger import open_ledger
    from amp_tools.ledger._sql import Q, Steps
    from amp_tools.owner.decisions import sign_policy_steps

    key = OwnerKey.load(path or default_owner_key_path())
    led = open_ledger(ledger or config.ledger_url())
    try:
        def show() -> Steps[list[object]]:
            rows = yield Q("SELECT p.version, p.policy FROM budget_policies p JOIN budgets b ON b.budget_id = "
                           "p.budget_id WHERE p.budget_id = ? AND p.version = COALESCE(?, b.policy_version)",
                           (budget_id, version))
            return list(rows[0]) if rows else []

        found = led.run_read_sync(show)
        if not found:
            raise NotFound(f"budget {budget_id!r} has no stored policy version {version or '(in force)'}",
                           hint=f"Create it with `amp-tools budgets create {budget_id} --policy FILE`.")
        sys.stdout.write(f"budget {budget_id} policy version {found[0]}:\n"
                         f"{json.dumps(json.loads(str(found[1])), indent=2, sort_keys=True)}\n")
        if not yes and not typer.confirm("Sign this policy version with the owner key?", default=False):
            raise typer.Exit(1)
        now = led.clock.now()
        signed = led.run_write_sync(lambda: sign_policy_steps(led.dialect, key, budget_id, int(str(found[0])),
                                                              now=now))
    finally:
        led.close_sync()
    err.print(f"signed policy version {signed['version']} of budget {budget_id} (hash {signed['policy_hash'][:12]}..."
              f", key {key.kid})", highlight=False, markup=False)


@owner_app.command("show", epilog=examples("amp-tools owner show > owner.pub.json"))
def owner_show(path: PathOpt = None) -> None:
    """Print the owner's PUBLIC JWK and its thumbprint: give these to agents (owner_key=, AMP_TOOLS_OWNER_KEY)."""
    _print_public(OwnerKey.load(path or default_owner_key_path()))


def _print_public(key: OwnerKey) -> None:
    sys.stdout.write(json.dumps(key.public_jwk(), sort_keys=True) + "\n")
    err.print(f"thumbprint (kid): {key.kid}", highlight=False, markup=False)
