"""Where amp-tools keeps its state, read from the environment once per call.

`AMP_TOOLS_HOME` (default ``~/.amp-tools``) holds the SQLite ledger, approvals and audit
trail and the agent key; `AMP_TOOLS_LEDGER_URL` selects another ledger (a path,
``sqlite:///path``, ``:memory:`` or ``postgresql://...``) for teams on many hosts.
"""

from __future__ import annotations

import os
from pathlib import Path

from amp_tools.private import private_dir

__all__ = ["agent_key_path", "home_dir", "ledger_url"]


def home_dir() -> Path:
    raw = os.environ.get("AMP_TOOLS_HOME")
    path = Path(raw).expanduser() if raw else Path.home() / ".amp-tools"
    return private_dir(path)


def ledger_url() -> str:
    return os.environ.get("AMP_TOOLS_LEDGER_URL") or str(home_dir() / "ledger.db")


def agent_key_path() -> Path:
    return home_dir() / "agent-key.jwk"
