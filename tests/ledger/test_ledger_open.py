"""open_ledger: where the database lives, URL spellings, schema versioning, :memory: sharing."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from amp_tools.errors import ConfigError, PolicyViolation
from amp_tools.ledger import open_ledger
from amp_tools.ledger.schema import SCHEMA_VERSION
from amp_tools.ledger.sqlite import SqliteLedger
from tests.ledger._ledger_helpers import PG_URL, intent, new_schema, policy, raw_sync, require_pg


def test_default_location_is_amp_tools_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMP_TOOLS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AMP_TOOLS_LEDGER_URL", raising=False)
    ledger = open_ledger()
    try:
        assert isinstance(ledger, SqliteLedger) and ledger.path == str(tmp_path / "home" / "ledger.db")
        ledger.reserve_sync(intent(), policy(), budget_id="b", idempotency_key="k", run_id="r")
    finally:
        ledger.close_sync()
    with sqlite3.connect(tmp_path / "home" / "ledger.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT MAX(version) FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        assert conn.execute("SELECT status, amount_minor FROM entries").fetchall() == [("reserved", 1000)]


def test_env_url_and_sqlite_spellings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMP_TOOLS_LEDGER_URL", f"sqlite:///{tmp_path}/env.db")
    ledger = open_ledger()
    assert isinstance(ledger, SqliteLedger) and ledger.path == f"{tmp_path}/env.db"
    ledger.close_sync()
    for spelling in ("sqlite:///:memory:", "sqlite://", ":memory:"):
        mem = open_ledger(spelling)
        assert isinstance(mem, SqliteLedger) and mem.memory
        mem.close_sync()


def test_reopen_keeps_data_and_does_not_migrate_twice(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    first = open_ledger(path)
    first.reserve_sync(intent(), policy(), budget_id="b", idempotency_key="k", run_id="r")
    first.close_sync()
    again = open_ledger(f"sqlite:///{path}")
    try:
        assert again.get_by_key_sync("b", "k") is not None
        assert raw_sync(again, "SELECT COUNT(*) FROM schema_version") == [(SCHEMA_VERSION,)]  # one row a version
    finally:
        again.close_sync()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    open_ledger(path).close_sync()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_version VALUES (99)")
    with pytest.raises(ConfigError, match="schema version 99"):
        open_ledger(path)


async def test_memory_ledger_is_shared_by_threads() -> None:
    ledger = open_ledger(":memory:")
    pol = policy(total_budget="10.00")
    ok: list[int] = []
    refused: list[str] = []

    def run(n: int) -> None:
        try:
            ok.append(ledger.reserve_sync(intent("1.00", checkout=f"c{n}"), pol, budget_id="b",
                                          idempotency_key=f"k{n}", run_id="r").id)
        except PolicyViolation as exc:
            refused.append(exc.rule)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ok) == 10 and refused == ["total_budget"] * 6
    assert len(await ledger.entries(limit=100)) == 10  # the executor thread sees the same rows
    await ledger.close()


@pytest.mark.postgres
def test_postgres_url_creates_its_schema() -> None:
    require_pg()
    schema = new_schema()
    ledger = open_ledger(f"{PG_URL}?options=-csearch_path%3D{schema}")
    try:
        ledger.reserve_sync(intent(), policy(), budget_id="b", idempotency_key="k", run_id="r")
        assert raw_sync(ledger, "SELECT current_schema()") == [(schema,)]
        assert raw_sync(ledger, "SELECT MAX(version) FROM schema_version") == [(SCHEMA_VERSION,)]
    finally:
        raw_sync(ledger, f'DROP SCHEMA "{schema}" CASCADE')
        ledger.close_sync()
