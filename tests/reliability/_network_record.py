"""A stand-in payment network's own durable record of charges, apart from the ledger.

The load and crash tests need "what the payment system says happened" to compare with the
ledger, without paying the few milliseconds of signing and verification a full AMP flow costs.
This is that record: one SQLite file of its own (never the ledger's database), one row per
idempotency key, written in its own transaction. A repeated charge for a key does not charge
again (the network is idempotent, as AMP merchants are per checkout) but bumps `attempts`, so a
test can prove that nothing ever *tried* to pay twice.

Imported by spawned worker processes and by crash-test subprocesses: no pytest here.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Charge", "NetworkRecord"]

_SCHEMA = ("CREATE TABLE IF NOT EXISTS charges (idem_key TEXT PRIMARY KEY, charge_id TEXT NOT NULL, "
           "merchant_id TEXT NOT NULL, minor INTEGER NOT NULL, currency TEXT NOT NULL, pid INTEGER NOT NULL, "
           "attempts INTEGER NOT NULL DEFAULT 1)")


@dataclass(frozen=True)
class Charge:
    idem_key: str
    charge_id: str
    merchant_id: str
    minor: int
    currency: str
    attempts: int


class NetworkRecord:
    """The network's charge table; one connection per thread, every charge its own transaction."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._local = threading.local()
        with self._conn() as conn:
            conn.execute(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL survives the death of any process (the kill -9 tests); only a power cut could lose
            # the last commits, which no test here simulates.
            conn.execute("PRAGMA synchronous = NORMAL")
            self._local.conn = conn
        return conn

    def charge(self, idem_key: str, merchant_id: str, minor: int, currency: str) -> str:
        """Charge once per key; returns the network's charge id (the same one on a repeat)."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                "INSERT INTO charges (idem_key, charge_id, merchant_id, minor, currency, pid) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (idem_key) DO UPDATE SET attempts = attempts + 1 "
                "RETURNING charge_id",
                (idem_key, f"CH-{idem_key[:16]}", merchant_id, minor, currency, os.getpid())).fetchone()
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return str(row[0])

    def find(self, idem_key: str) -> Charge | None:
        row = self._conn().execute(
            "SELECT idem_key, charge_id, merchant_id, minor, currency, attempts FROM charges WHERE idem_key = ?",
            (idem_key,)).fetchone()
        return None if row is None else Charge(str(row[0]), str(row[1]), str(row[2]), int(row[3]), str(row[4]),
                                               int(row[5]))

    def all(self) -> list[Charge]:
        rows = self._conn().execute(
            "SELECT idem_key, charge_id, merchant_id, minor, currency, attempts FROM charges").fetchall()
        return [Charge(str(r[0]), str(r[1]), str(r[2]), int(r[3]), str(r[4]), int(r[5])) for r in rows]

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
