"""The owner's key files and the agent's pinned key: modes, refusals, resolution from arg or env."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from amp_tools.cli import app
from amp_tools.errors import ConfigError
from amp_tools.owner import OwnerKey, load_owner_signer, resolve_owner_key
from amp_tools.owner.keys import OWNER_KEY_ENV, default_owner_key_path


def test_owner_init_writes_0600_key_in_0700_dir_whatever_the_umask(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMP_TOOLS_HOME", str(tmp_path / "home"))
    old = os.umask(0)
    try:
        result = CliRunner().invoke(app, ["owner", "init"])
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    path = default_owner_key_path()
    assert path == tmp_path / "home" / "owner" / "owner-key.jwk"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    printed = json.loads(result.stdout.splitlines()[0])
    assert "d" not in printed and printed["kty"] == "EC" and printed["crv"] == "P-256"
    assert printed["kid"] == OwnerKey.load(path).kid
    # show prints the same public half; a second init never overwrites the key
    shown = CliRunner().invoke(app, ["owner", "show"])
    assert json.loads(shown.stdout.splitlines()[0]) == printed
    again = CliRunner().invoke(app, ["owner", "init"])
    assert again.exit_code != 0
    assert OwnerKey.load(path).kid == printed["kid"]


def test_owner_init_path_option_and_group_readable_key_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "keys" / "mine.jwk"
    result = CliRunner().invoke(app, ["owner", "init", "--path", str(target)])
    assert result.exit_code == 0, result.output
    os.chmod(target, 0o640)
    with pytest.raises(ConfigError, match="accessible by group or others"):
        OwnerKey.load(target)
    os.chmod(target, 0o600)
    os.chmod(target.parent, 0o755)
    with pytest.raises(ConfigError, match="directory"):
        OwnerKey.load(target)


def test_resolve_owner_key_from_dict_json_file_env_and_refuses_private(tmp_path: Path) -> None:
    key = OwnerKey.generate()
    pub = key.public_jwk()
    assert resolve_owner_key(pub) is not None
    assert resolve_owner_key(pub).kid == key.kid  # type: ignore[union-attr]
    assert resolve_owner_key(json.dumps(pub)).kid == key.kid  # type: ignore[union-attr]
    file = tmp_path / "owner.pub.json"
    file.write_text(json.dumps(pub))
    assert resolve_owner_key(str(file)).kid == key.kid  # type: ignore[union-attr]
    assert resolve_owner_key(file).kid == key.kid  # type: ignore[union-attr]
    assert resolve_owner_key(None, env={}) is None
    assert resolve_owner_key(None, env={OWNER_KEY_ENV: json.dumps(pub)}).kid == key.kid  # type: ignore[union-attr]
    private = dict(key.signing_key.export(private_key=True, as_dict=True))
    with pytest.raises(ConfigError, match="private"):
        resolve_owner_key(private)
    with pytest.raises(ConfigError, match="cannot read"):
        resolve_owner_key(str(tmp_path / "missing.json"))
    with pytest.raises(ConfigError, match="P-256"):
        resolve_owner_key({"kty": "RSA", "n": "x", "e": "AQAB"})


def test_load_owner_signer_is_none_without_init(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMP_TOOLS_HOME", str(tmp_path))
    assert load_owner_signer() is None
    saved = OwnerKey.generate()
    saved.save(default_owner_key_path())
    loaded = load_owner_signer()
    assert loaded is not None and loaded.kid == saved.kid
    private_d = str(loaded.signing_key.export(private_key=True, as_dict=True)["d"])
    assert private_d not in repr(loaded) and private_d not in str(loaded)


async def test_signature_status_for_the_console(tmp_path: Path) -> None:
    from amp_tools.ledger import open_ledger
    from amp_tools.owner.decisions import sign_policy_steps
    from amp_tools.owner.enforce import signature_status
    from amp_tools.policy import BudgetPolicy

    led = open_ledger(str(tmp_path / "l.db"))
    try:
        assert await signature_status(led, "team") == {"signed": False, "policy_signed": False,
                                                       "control_signed": None}
        led.create_budget_sync("team", BudgetPolicy.model_validate({"name": "team", "currency": "USD",
                                                                    "total_budget": "10.00"}), by="owner")
        assert (await signature_status(led, "team"))["policy_signed"] is False
        now = led.clock.now()
        led.run_write_sync(lambda: sign_policy_steps(led.dialect, OwnerKey.generate(), "team", None, now=now))
        assert await signature_status(led, "team") == {"signed": True, "policy_signed": True, "control_signed": None}
    finally:
        led.close_sync()
