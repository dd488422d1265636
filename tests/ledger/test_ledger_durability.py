"""The SQLite `durability` option: FULL by default, NORMAL only when asked, anything else refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from amp_tools.errors import ConfigError
from amp_tools.ledger import open_ledger
from tests.ledger._ledger_helpers import intent, policy, raw_sync


@pytest.mark.parametrize(("options", "synchronous"), [({}, 2), ({"durability": "full"}, 2),
                                                      ({"durability": "normal"}, 1)])
def test_durability_sets_synchronous(tmp_path: Path, options: dict[str, str], synchronous: int) -> None:
    ledger = open_ledger(tmp_path / "l.db", **options)
    try:
        res = ledger.reserve_sync(intent(), policy(), budget_id="b", idempotency_key="k", run_id="r")
        assert res.entry.status == "reserved" and res.entry.budget_amount.minor == 1000
        assert raw_sync(ledger, "PRAGMA synchronous") == [(synchronous,)]
        assert raw_sync(ledger, "PRAGMA journal_mode") == [("wal",)]
    finally:
        ledger.close_sync()


def test_unknown_durability_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="durability 'off'"):
        open_ledger(tmp_path / "l.db", durability="off")
    assert not (tmp_path / "l.db").exists()
