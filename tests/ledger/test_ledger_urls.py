"""Ledger URLs: the accepted forms open the database they name; every other spelling is refused with the
accepted forms listed, and nothing is created (a typo must not give one host a private budget)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from amp_tools.errors import ConfigError
from amp_tools.ledger import open_ledger, parse_ledger_url


@pytest.mark.parametrize("url", [
    "mysql://127.0.0.1/x", "postgresql+psycopg://127.0.0.1/test", "POSTGRESQL://127.0.0.1/test",
    "postgressql://127.0.0.1/test", "Postgres://127.0.0.1/test", "sqlite+pysqlite:///x.db", "SQLITE:///x.db",
    "http://example.com/ledger", "file:///tmp/x.db", "sqlite://host/x.db", "sqlite:", " ledger.db", "",
])
def test_other_spellings_are_refused_creating_nothing(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                      ) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        open_ledger(url)
    assert "postgresql://" in str(caught.value) and "sqlite:///absolute" in str(caught.value)
    assert "nothing was opened or created" in str(caught.value)
    assert list(tmp_path.rglob("*")) == []  # no ./mysql:/127.0.0.1/x, no file of any kind


def test_the_environment_variable_is_checked_the_same_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AMP_TOOLS_LEDGER_URL", "mysql://127.0.0.1/x")
    with pytest.raises(ConfigError, match="mysql"):
        open_ledger()
    assert list(tmp_path.rglob("*")) == []


def test_sqlite_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_ledger_url("sqlite:///srv/amp/x.db").where == "/srv/amp/x.db"  # absolute, not ./srv/amp/x.db
    assert parse_ledger_url("sqlite:data/x.db").where == "data/x.db"
    assert parse_ledger_url("ledger.db").where == "ledger.db"
    assert parse_ledger_url(":memory:").where == ":memory:"
    assert parse_ledger_url("postgres://u@h/db").engine == "postgresql"
    monkeypatch.chdir(tmp_path)
    for url, made in ((f"sqlite://{tmp_path}/abs.db", tmp_path / "abs.db"), ("sqlite:rel/r.db", tmp_path / "rel/r.db"),
                      ("plain.db", tmp_path / "plain.db")):
        open_ledger(url).close_sync()
        assert made.is_file(), url
    assert not (tmp_path / tmp_path.relative_to("/")).exists()  # the absolute form did not become relative
    assert os.path.isabs(parse_ledger_url(f"sqlite://{tmp_path}/abs.db").where)


@pytest.mark.postgres
def test_postgres_forms_open() -> None:
    from tests.ledger._ledger_helpers import PG_URL, require_pg

    require_pg()
    for url in (PG_URL, PG_URL.replace("postgresql://", "postgres://", 1)):
        assert parse_ledger_url(url).engine == "postgresql"
