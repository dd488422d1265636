"""Files private whatever the umask: the ledger with its -wal and -shm, the agent key, the home directory."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from amp_tools import config
from amp_tools.amp.keys import AgentKey
from amp_tools.ledger import open_ledger


@pytest.fixture(autouse=True)
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)  # the common default: new files 0644, new directories 0755
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_ledger_and_its_wal_and_shm_are_0600_in_0700_directories(tmp_path: Path) -> None:
    where = tmp_path / "new" / "deeper" / "ledger.db"
    ledger = open_ledger(str(where))
    try:
        await ledger.audit.append("note", {"x": 1})
        files = [where, Path(f"{where}-wal"), Path(f"{where}-shm")]
        assert all(f.exists() for f in files)
        assert [_mode(f) for f in files] == [0o600, 0o600, 0o600]
        assert [_mode(d) for d in (tmp_path / "new", tmp_path / "new" / "deeper")] == [0o700, 0o700]
        assert _mode(tmp_path) == stat.S_IMODE(tmp_path.stat().st_mode)  # an existing directory is not touched
    finally:
        await ledger.close()


def test_the_agent_key_and_the_home_directory_are_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMP_TOOLS_HOME", str(tmp_path / "home" / "amp"))
    home = config.home_dir()
    assert [_mode(home.parent), _mode(home)] == [0o700, 0o700]
    key_path = tmp_path / "keys" / "agent-key.jwk"
    AgentKey.generate("k1").save(key_path)
    assert (_mode(key_path), _mode(key_path.parent)) == (0o600, 0o700)
