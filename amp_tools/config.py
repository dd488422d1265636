"""Where amp-tools keeps its state, read from the environment once per call.

This is the one place that reads `AMP_TOOLS_HOME` and `AMP_TOOLS_LEDGER_URL`. `AMP_TOOLS_HOME` (default
``~/.amp-tools``) holds the SQLite ledger, approvals and audit
trail and the agent key; `AMP_TOOLS_LEDGER_URL` selects another ledger (a path,
``sqlite:///path``, ``:memory:`` or ``postgresql://...``) for teams on many hosts.
"""

from __future__ import annotations

import os
from pathlib import Path

from amp_tools.private import private_dir

__all__ = ["agent_key_path", "default_ledger", "home_dir", "home_path", "ledger_url"]


def home_path() -> Path:
    """`$AMP_TOOLS_HOME` (default ``~/.amp-tools``), not created."""
    raw = os.environ.get("AMP_TOOLS_HOME")
    return Path(raw).expanduser() if raw else Path.home() / ".amp-tools"


def home_dir() -> Path:
    """`home_path`, created (0700) when missing."""
    return private_dir(home_path())


def default_ledger() -> str:
    """The ledger when none is named: `AMP_TOOLS_LEDGER_URL`, else ``$AMP_TOOLS_HOME/ledger.db``; nothing created."""
    return os.environ.get("AMP_TOOLS_LEDGER_URL") or str(home_path() / "ledger.db")


def ledger_url() -> str:
    """`default_ledger`, with the home created first when the ledger is the default file in it."""
    if not os.environ.get("AMP_TOOLS_LEDGER_URL"):
        home_dir()
    return default_ledger()


def agent_key_path() -> Path:
    return home_dir() / "agent-key.jwk"
