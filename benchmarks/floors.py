"""The hardware floors each figure is divided by, measured in the same run on the same disk.

* SQLite: the latency of one durable commit of a one-row INSERT (WAL, ``synchronous=FULL``, the
  ledger's default), median of `samples`. A payment is two such commits (reserve, commit), so the
  two-fsync floor is ``1 / (2 x latency)`` payments per second.
* PostgreSQL: the latency of one logged commit of a one-row INSERT on one connection
  (``synchronous_commit`` as the server has it), in a fresh schema dropped afterwards.
"""

from __future__ import annotations

import sqlite3
import statistics
import time
import uuid
from pathlib import Path

__all__ = ["pg_commit_ms", "sqlite_commit_ms"]


def sqlite_commit_ms(tmp: str, samples: int = 200) -> float:
    path = Path(tmp) / f"floor-{uuid.uuid4().hex[:8]}.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
        times = []
        for n in range(samples + 5):
            start = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t (v) VALUES (?)", (n,))
            conn.execute("COMMIT")
            if n >= 5:
                times.append(time.perf_counter() - start)
        return statistics.median(times) * 1e3
    finally:
        conn.close()
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)


def pg_commit_ms(url: str, samples: int = 200) -> float:
    import psycopg

    schema = f"amp_floor_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        try:
            conn.execute(f'CREATE TABLE "{schema}".t (id BIGSERIAL PRIMARY KEY, v INTEGER NOT NULL)')
            times = []
            for n in range(samples + 5):
                start = time.perf_counter()
                with conn.transaction():
                    conn.execute(f'INSERT INTO "{schema}".t (v) VALUES (%s)', (n,))
                if n >= 5:
                    times.append(time.perf_counter() - start)
            return statistics.median(times) * 1e3
        finally:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
