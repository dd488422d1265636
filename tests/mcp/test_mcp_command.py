"""The `amp-tools mcp` command without a client: the core and the CLI load without the SDK, and
bad options are one readable line that starts nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from amp_tools.cli import main
from tests.mcp._mcp_support import write_policy

# Makes `import mcp` fail in a child interpreter, as on an install without the [mcp] extra.
_NO_MCP = "import sys; sys.modules['mcp'] = None; "


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_core_and_cli_import_without_the_mcp_sdk() -> None:
    # The MCP command first: it uses the CLI's help module, and the CLI registers it (no import cycle).
    imports = "import amp_tools, amp_tools.mcp, amp_tools.mcp.command; from amp_tools.cli import app; "
    blocked = _run(_NO_MCP + imports)
    assert blocked.returncode == 0, blocked.stderr
    loaded = _run("import sys; " + imports + "print(sorted(m for m in sys.modules if m.split('.')[0] == 'mcp'))")
    assert loaded.stdout.strip() == "[]", loaded.stderr


def test_without_the_sdk_the_command_says_which_extra_to_install(tmp_path: Path) -> None:
    policy = write_policy(tmp_path)
    done = _run(_NO_MCP + f"sys.argv = ['amp-tools', 'mcp', '--policy', {str(policy)!r}]; "
                          "from amp_tools.cli import main; main()")
    assert done.returncode == 2
    assert "the mcp package is not installed" in done.stderr and "pip install 'amp-agent-payments[mcp]'" in done.stderr
    assert "Traceback" not in done.stderr


def _main(args: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> tuple[object, str]:
    argv = sys.argv
    sys.argv = ["amp-tools", "mcp", *args]
    try:
        with pytest.raises(SystemExit) as stopped:
            main()
    finally:
        sys.argv = argv
    return stopped.value.code, capsys.readouterr().err


def test_bad_options_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMP_TOOLS_HOME", str(tmp_path))
    policy = str(write_policy(tmp_path))
    broken = tmp_path / "broken.json"
    broken.write_text('{"currency": "USD"}', encoding="utf-8")
    unnamed = tmp_path / "unnamed.json"
    unnamed.write_text('{"currency": "USD", "total_budget": "100.00"}', encoding="utf-8")
    monkeypatch.delenv("AMP_TOOLS_BUDGET", raising=False)
    cases = {
        ("--policy", policy, "--transport", "sse"): "unknown --transport 'sse'; expected stdio or http",
        ("--policy", policy, "--sandbox", "--cp", "http://127.0.0.1:1"): "--sandbox and --cp exclude each other",
        ("--policy", policy, "--transport", "http", "--host", "0.0.0.0"): "--host 0.0.0.0 is not a loopback address",
        ("--policy", policy, "--cp", "ftp://cp"): "--cp 'ftp://cp' is not an http(s) URL",
        ("--policy", policy, "--approvals", "model"): "unknown --approvals 'model'; expected auto, cli or form",
        ("--policy", policy, "--transport", "http", "--host", "0.0.0.0", "--allow-remote"):
            "--allow-remote needs the host names clients use: --allowed-host NAME",
        ("--policy", policy, "--print-config", "emacs"):
            "unknown --print-config 'emacs'; expected claude, cursor or vscode",
        ("--policy", str(unnamed), "--cp", "http://127.0.0.1:1"): "name the budget this MCP server spends from",
        ("--policy", policy, "--merchants", str(tmp_path / "none.yaml")): "merchant directory",
        (): "the offline sandbox needs a policy for its fresh budget",
        ("--budget-id", "nope"): "holds budget",
        ("--policy", policy, "--owner-key", '{"kty": "nope"}'): "public JWK must be an EC P-256 JWK",
        ("--policy", policy, "--port", "70000"): "--port 70000 is not a TCP port",
        ("--policy", str(broken)): "total_budget",
    }
    for args, expected in cases.items():
        code, err = _main(args, capsys)
        assert code == 2, (args, err)
        assert expected in " ".join(err.split()) and "Traceback" not in err, (args, err)
    assert not (tmp_path / "ledger.db").exists()  # nothing was opened
