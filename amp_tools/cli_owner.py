"""``amp-tools owner``: the budget owner's signing key (create it, print its public half to pin)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from amp_tools.owner import OwnerKey, default_owner_key_path

__all__ = ["owner_app"]

owner_app = typer.Typer(help="The budget owner's signing key (ES256): what agents pin to trust your decisions.",
                        no_args_is_help=True)
err = Console(stderr=True)
PathOpt = Annotated[Path | None, typer.Option("--path", help="Private key file (default "
                                                             "$AMP_TOOLS_HOME/owner/owner-key.jwk).")]


@owner_app.command("init")
def owner_init(path: PathOpt = None) -> None:
    """Create the owner's private key (0600, in a 0700 directory) and print the public JWK to pin."""
    target = path or default_owner_key_path()
    key = OwnerKey.generate()
    written = key.save(target)
    err.print(f"owner key written to {written} (keep it on the owner's side; never give it to an agent)",
              highlight=False, markup=False)
    _print_public(key)


@owner_app.command("show")
def owner_show(path: PathOpt = None) -> None:
    """Print the owner's PUBLIC JWK and its thumbprint: give these to agents (owner_key=, AMP_TOOLS_OWNER_KEY)."""
    _print_public(OwnerKey.load(path or default_owner_key_path()))


def _print_public(key: OwnerKey) -> None:
    sys.stdout.write(json.dumps(key.public_jwk(), sort_keys=True) + "\n")
    err.print(f"thumbprint (kid): {key.kid}", highlight=False, markup=False)
