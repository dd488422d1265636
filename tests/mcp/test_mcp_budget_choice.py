"""The MCP server spends from a budget chosen on purpose (the policy's `name:`, AMP_TOOLS_BUDGET or the
given id), never a silent `default` that would double a Python agent's limit on the same policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from amp_tools.errors import ConfigError
from amp_tools.mcp.backend import open_backend


def _policy(tmp_path: Path, name: str | None) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text((f"name: {name}\n" if name else "") + 'currency: USD\ntotal_budget: "100.00"\n')
    return path


def test_the_policy_name_or_the_environment_names_the_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    monkeypatch.delenv("AMP_TOOLS_BUDGET", raising=False)
    backend = open_backend(_policy(tmp_path, "team"), ledger=str(tmp_path / "l.db"), cp_url="http://127.0.0.1:9")
    assert backend.budget_id == "team"
    backend.store.close()
    backend.ledger.close_sync()
    monkeypatch.setenv("AMP_TOOLS_BUDGET", "alice")
    backend = open_backend(_policy(tmp_path, "team"), ledger=str(tmp_path / "l.db"), cp_url="http://127.0.0.1:9")
    assert backend.budget_id == "alice"
    backend.store.close()
    backend.ledger.close_sync()


def test_no_budget_named_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AMP_TOOLS_BUDGET", raising=False)
    with pytest.raises(ConfigError, match="name the budget"):
        open_backend(_policy(tmp_path, None), ledger=str(tmp_path / "l.db"), cp_url="http://127.0.0.1:9")
