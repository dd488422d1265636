"""Every command's ``--help`` follows the conventions of amp_tools/cli/_help.py: a one-line summary,
described arguments, readable metavars, an example; every command that reads the ledger takes the one
shared ``--ledger`` option. New commands are held to the same rules."""

from __future__ import annotations

import re
from typing import Any

import pytest

from amp_tools.cli import cli_command
from amp_tools.cli._help import LEDGER_HELP, walk

ROOT = cli_command()
COMMANDS = [(path, cmd) for path, cmd in walk(ROOT) if path]
LEAVES = [(path, cmd) for path, cmd in COMMANDS if not getattr(cmd, "commands", None)]
#: command groups whose every command reads or writes the ledger (others' new groups included)
LEDGER_GROUPS = ("ledger", "approvals", "audit", "payments", "budgets")
#: single commands of other groups that read or write the ledger
LEDGER_LEAVES = (("owner", "sign-policy"), ("mcp", "tokens", "create"), ("mcp", "tokens", "list"),
                 ("mcp", "tokens", "revoke"))
METAVAR = re.compile(r"^[A-Z][A-Z0-9_]*(\|[A-Z][A-Z0-9_]*)*$")


def _help(path: tuple[str, ...], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit) as done:
        ROOT.main([*path, "--help"], prog_name="amp-tools")
    assert done.value.code == 0
    return capsys.readouterr().out


def _ids(items: list[tuple[tuple[str, ...], Any]]) -> list[str]:
    return [" ".join(p) for p, _ in items]


@pytest.mark.parametrize(("path", "cmd"), COMMANDS, ids=_ids(COMMANDS))
def test_every_command_has_a_one_line_summary(path: tuple[str, ...], cmd: Any) -> None:
    summary = (cmd.help or "").strip().splitlines()
    assert summary and summary[0].strip(), f"amp-tools {' '.join(path)} has no summary"
    assert summary[0].rstrip().endswith("."), summary[0]
    assert len(summary[0]) <= 120, summary[0]


@pytest.mark.parametrize(("path", "cmd"), LEAVES, ids=_ids(LEAVES))
def test_every_argument_is_described_with_a_readable_metavar(path: tuple[str, ...], cmd: Any,
                                                            capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    for param in cmd.params:
        name = param.opts[0] if param.opts else param.name
        assert (getattr(param, "help", None) or "").strip(), \
            f"amp-tools {' '.join(path)} {name}: no help text"
        if getattr(param, "is_flag", False):
            continue
        assert param.metavar and METAVAR.match(param.metavar), \
            f"amp-tools {' '.join(path)} {name}: metavar {param.metavar!r} (expected e.g. PATH, ID, URL, N)"
    text = _help(path, capsys, monkeypatch)
    for bad in ("<bool>", "<str>", "<int>", "<float>", "<list[", "<path>", "{"):
        assert bad not in text, f"amp-tools {' '.join(path)} --help shows {bad}:\n{text}"


@pytest.mark.parametrize(("path", "cmd"), LEAVES, ids=_ids(LEAVES))
def test_every_command_shows_an_example(path: tuple[str, ...], cmd: Any, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    text = _help(path, capsys, monkeypatch)
    assert "Examples:" in text, f"amp-tools {' '.join(path)} --help has no example"
    # one example per paragraph (a long one wraps onto the next lines)
    paragraphs = [" ".join(line.strip() for line in para.splitlines() if line.strip())
                  for para in re.split(r"\n\s*\n", text[text.index("Examples:") + len("Examples:"):])]
    examples = [p for p in paragraphs if p]
    assert examples and all(e.startswith(f"amp-tools {' '.join(path)}") for e in examples), examples


LEDGER_COMMANDS = [(p, c) for p, c in LEAVES if p[0] in LEDGER_GROUPS or p in LEDGER_LEAVES or p == ("serve",)]


@pytest.mark.parametrize(("path", "cmd"), LEDGER_COMMANDS, ids=_ids(LEDGER_COMMANDS))
def test_every_ledger_command_takes_the_shared_ledger_option(path: tuple[str, ...], cmd: Any) -> None:
    [ledger] = [p for p in cmd.params if "--ledger" in p.opts]
    assert ledger.metavar == "PATH|URL" and ledger.help == LEDGER_HELP


def test_the_walk_sees_every_group() -> None:
    names = {p[0] for p, _ in COMMANDS}
    assert {"ledger", "approvals", "audit", "payments", "conformance", "sandbox", "serve", "mcp", "demo"} <= names
    assert len(LEDGER_COMMANDS) >= 12
