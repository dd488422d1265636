"""Ctrl-C in `amp-tools demo travel --approve prompt`, as a person at a terminal presses it: a real
process on a pseudo-terminal, sent SIGINT while a prompt waits. The prompt gives way at once (no
Enter needed); the demo says what it holds and the exact command that settles it, and exits 130."""

from __future__ import annotations

import asyncio
import os
import pty
import re
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")


class Terminal:
    """The demo on a pseudo-terminal: what it printed so far, and typing into it."""

    def __init__(self, home: Path) -> None:
        env = {**os.environ, "AMP_TOOLS_HOME": str(home), "COLUMNS": "120", "TERM": "dumb"}
        for name in ("AMP_TOOLS_LEDGER_URL", "AMP_TOOLS_MODEL"):
            env.pop(name, None)
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen([sys.executable, "-c", "from amp_tools.cli import main; main()", "demo", "travel",
                                      "--approve", "prompt"], stdin=slave, stdout=slave, stderr=slave, cwd=ROOT,
                                     env=env, close_fds=True)
        os.close(slave)
        self.text = ""

    def read_until(self, marker: str) -> str:
        """Read output until `marker` shows (bounded, so a hang fails instead of blocking the suite)."""
        while marker not in self.text:
            self._read_some(marker)
        return self.text

    def read_until_count(self, marker: str, count: int) -> None:
        """Read until `marker` has shown `count` times."""
        while self.text.count(marker) < count:
            self._read_some(marker)

    def _read_some(self, marker: str, limit: float = 120.0) -> None:
        ready, _, _ = select.select([self.master], [], [], limit)
        assert ready, f"nothing more after {limit} s waiting for {marker!r}:\n{self.text}"
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # the child closed the terminal
            chunk = b""
        assert chunk, f"the demo ended before {marker!r}:\n{self.text}"
        self.text += ANSI.sub("", chunk.decode("utf-8", "replace")).replace("\r", "")

    def type(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())

    def interrupt_and_wait(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        # Bounded: before the fix a prompt held the process until Enter, so this wait would run out.
        code = self.proc.wait(timeout=60)
        try:
            while True:
                ready, _, _ = select.select([self.master], [], [], 0.5)
                if not ready:
                    break
                chunk = os.read(self.master, 65536)
                if not chunk:
                    break
                self.text += ANSI.sub("", chunk.decode("utf-8", "replace")).replace("\r", "")
        except OSError:
            pass
        os.close(self.master)
        return code


def test_ctrl_c_at_the_wallet_question_exits_at_once_holding_nothing(tmp_path: Path) -> None:
    term = Terminal(tmp_path / "home")
    term.read_until("Confirm in your wallet? [y/N]")
    assert term.interrupt_and_wait() == 130
    assert "interrupted" in term.text
    out = " ".join(term.text[term.text.index("interrupted"):].split())
    assert re.search(r"nothing held: budget kl-trip-\S+ has 0 paid and 0 released payment\(s\), none under way", out)
    assert "Traceback" not in term.text


def test_ctrl_c_at_a_payment_approval_exits_at_once_and_releases_the_question(tmp_path: Path) -> None:
    term = Terminal(tmp_path / "home")
    answered = 0
    while True:  # say yes in the wallet until the first payment approval is asked
        term.read_until_count("[y/N]", answered + 1)
        if term.text.rstrip().endswith("Approve this payment? [y/N]"):
            break
        term.type("y")
        answered += 1
    assert term.interrupt_and_wait() == 130
    out = " ".join(term.text[term.text.index("interrupted"):].split())
    # the hotel waited for the person; stopping withdrew the question, so its hold was released
    assert re.search(r"nothing held: budget kl-trip-\S+ has 1 paid and 1 released payment\(s\), none under way", out)
    assert "Traceback" not in term.text


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
async def test_what_is_held_when_stopped_is_named_with_the_command_that_settles_it(
        engine: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rich.console import Console

    from amp_examples.travel_booking.run import report_interrupted
    from tests.ledger._ledger_helpers import PG_URL, drop_schema, intent, new_schema, open_backend, policy, require_pg

    if engine == "postgres":
        require_pg()
    where = str(tmp_path / "ledger.db") if engine == "sqlite" else new_schema()
    url = where if engine == "sqlite" else f"{PG_URL}?options=-csearch_path%3D{where}"
    try:
        led = open_backend(engine, where)
        paid = await led.reserve(intent("12.00", checkout="c1"), policy(), budget_id="kl-trip-x", idempotency_key="a")
        await led.commit(paid.id, external_ref="tx-1")
        held = await led.reserve(intent("45.50", merchant="hotel", checkout="c2"), policy(), budget_id="kl-trip-x",
                                 idempotency_key="b")
        await led.close()
        shown = Console(width=200, record=True)
        await asyncio.to_thread(report_interrupted, shown, url, "kl-trip-x")
        text = shown.export_text()
        assert f"held when interrupted (1):\n  - payment {held.id}: 45.50 USD to HOTEL (reserved)" in text
        assert f"amp-tools payments unresolved --budget kl-trip-x --ledger {url}" in text
    finally:
        if engine == "postgres":
            drop_schema(where)
