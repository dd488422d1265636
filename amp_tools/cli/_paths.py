"""Where the read-only CLI commands look, without creating anything on the way.

`ledger show`, `audit verify`, `audit export` and `approvals list` only read: a ledger or an
approval store that does not exist is reported (naming the path), never created empty.
"""

from __future__ import annotations

from pathlib import Path

from amp_tools.config import default_ledger, home_path
from amp_tools.errors import ConfigError

__all__ = ["approvals_path", "existing_ledger"]


def approvals_path() -> Path:
    return home_path() / "approvals.db"


def existing_ledger(target: str | None) -> str:
    """The ledger to read: `target`, `AMP_TOOLS_LEDGER_URL` or the default file, which must exist."""
    from amp_tools.ledger.url import parse_ledger_url

    text = target or default_ledger()
    parsed = parse_ledger_url(text)  # a malformed URL is refused here, before anything is opened
    if parsed.engine == "postgresql" or parsed.where == ":memory:":
        return text
    path = Path(parsed.where)
    if not path.is_file():
        raise ConfigError(f"no ledger at {path}",
                          hint="Nothing has been recorded there yet: run an agent or `amp-tools demo travel` first, "
                               "or pass --ledger PATH (or set AMP_TOOLS_LEDGER_URL).")
    return text
