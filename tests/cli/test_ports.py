"""A busy port is one clear line and exit 2 before anything is printed: ``amp-tools serve``,
``amp-tools sandbox`` and the owner-console example (no URL, no login token, no traceback)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from amp_tools.cli._ports import require_free_port
from amp_tools.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


@pytest.mark.parametrize("argv", [
    ["-c", "from amp_tools.cli import main; main()", "serve", "--port", "{port}"],
    ["-c", "from amp_tools.cli import main; main()", "sandbox", "--port", "{port}"],
    ["-m", "amp_examples.owner_console", "--port", "{port}"],
], ids=["serve", "sandbox", "owner_console example"])
def test_a_busy_port_is_one_line_and_exit_2(argv: list[str], busy_port: int, tmp_path: Path) -> None:
    env = {**os.environ, "AMP_TOOLS_HOME": str(tmp_path / "home")}
    env.pop("AMP_TOOLS_LEDGER_URL", None)
    done = subprocess.run([sys.executable, *(a.format(port=busy_port) for a in argv)], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=120, check=False)
    assert done.returncode == 2
    assert done.stdout == ""  # no URL, no login token for a server that never starts
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"port {busy_port} on 127.0.0.1 is already in use" in lines[0], done.stderr
    assert "--port" in lines[0] and "Traceback" not in done.stderr


def test_a_free_port_passes_and_stays_free() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    require_free_port("127.0.0.1", port)
    with socket.socket() as again:  # the check leaves nothing bound
        again.bind(("127.0.0.1", port))
    with pytest.raises(ConfigError, match="--port 70000 must be between 1 and 65535"):
        require_free_port("127.0.0.1", 70000)
