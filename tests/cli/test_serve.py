"""The CLI side: the passphrase is only ever kept hashed; approvals answered from the ledger's database."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from amp_tools.approvals import ApprovalStore
from amp_tools.cli import app
from amp_tools.cli._serve import _passphrase_hash
from amp_tools.clock import ManualClock
from amp_tools.errors import ConfigError
from amp_tools.ledger import open_ledger
from amp_tools.server import hash_secret, verify_secret


def test_hash_passphrase_prints_a_verifiable_scrypt_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "a long enough passphrase")
    result = CliRunner().invoke(app, ["serve", "--hash-passphrase"])
    assert result.exit_code == 0, result.output
    digest = result.output.strip().splitlines()[-1]
    assert digest.startswith("scrypt$16384$8$1$") and "a long enough passphrase" not in result.output
    assert verify_secret("a long enough passphrase", digest) and not verify_secret("another passphrase!", digest)


def test_passphrase_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AMP_TOOLS_INBOX_PASSPHRASE_HASH", raising=False)
    monkeypatch.setenv("AMP_TOOLS_INBOX_PASSPHRASE", "from the environment")
    digest, shown = _passphrase_hash(None)
    assert shown is None and verify_secret("from the environment", digest)
    import os

    assert "AMP_TOOLS_INBOX_PASSPHRASE" not in os.environ  # the plain text does not linger
    digest, shown = _passphrase_hash(None)
    assert shown is not None and len(shown) >= 20 and verify_secret(shown, digest)
    with pytest.raises(ConfigError, match="scrypt"):
        _passphrase_hash("plain-text-is-not-a-hash")
    with pytest.raises(ConfigError, match="at least 12"):
        hash_secret("short")


def test_cli_answers_in_the_ledger_and_reopens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.approvals.approvals_helpers import request

    monkeypatch.setenv("AMP_TOOLS_HOME", str(tmp_path))
    monkeypatch.delenv("AMP_TOOLS_LEDGER_URL", raising=False)
    store = ApprovalStore(open_ledger(tmp_path / "ledger.db"))
    req = request(clock=ManualClock(datetime.now(UTC)))
    store.create(req)
    runner = CliRunner()
    denied = runner.invoke(app, ["approvals", "deny", req.id, "--reason", "no", "--by", "dana"])
    assert denied.exit_code == 0, denied.output
    assert store.get(req.id).status == "denied"
    reopened = runner.invoke(app, ["approvals", "reopen", req.id, "--by", "dana"])
    assert reopened.exit_code == 0 and "may ask again" in reopened.output
    assert store.get(req.id).status == "reopened"
    missing = runner.invoke(app, ["approvals", "import", str(tmp_path / "nope.db")])
    assert missing.exit_code != 0
