"""Resident memory of one process after 10^5 payments over after 10^3 (`rss_growth_1e5_vs_1e3`).

A fresh interpreter (so nothing else it ran is counted) pays `big` times on one SQLite ledger:
``reserve_sync`` + ``commit_sync`` each, unique keys, one budget. The current RSS (``/proc/self/statm``,
after a garbage collection) is read after the first `small` payments and after all of them. The
ledger uses ``durability="normal"`` here: fsyncs cost time, not memory, and 10^5 fully durable
payments would dominate the run. The same process then times `audit verify` (every chain and the
ledger cross-check) over those payments: ``audit_verify_s_1e5``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["measure"]

_CHILD = r"""
import gc, json, os, sys, time
from benchmarks.ledger_tps import AT, _open, _policy
from amp_tools.money import Money
from amp_tools.policy import BudgetPolicy, SpendIntent

path, small, big = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ledger = _open(path, None, "normal")
policy = BudgetPolicy.model_validate(_policy(2 * big))
amount = Money(100, "USD")
page = os.sysconf("SC_PAGE_SIZE")

def rss() -> int:
    gc.collect()
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * page

out = {}
start = time.perf_counter()
for n in range(big):
    intent = SpendIntent("pay", f"m{n % 4}", "M", "5812", amount, amount, None, (), False, f"c-{n}", AT)
    res = ledger.reserve_sync(intent, policy, budget_id="bench", idempotency_key=f"k-{n}", run_id="bench")
    ledger.commit_sync(res.id, external_ref=f"ref-{n}")
    if n + 1 == small:
        out["small"] = rss()
out["big"] = rss()
out["seconds"] = time.perf_counter() - start
started = time.perf_counter()
report = ledger.audit.verify_sync()  # every chain and the ledger cross-check, over 10^5 payments
out["verify_s"], out["verify_ok"] = time.perf_counter() - started, report.ok
ledger.close_sync()
print(json.dumps(out))
"""


def measure(tmp: str, *, small: int = 1_000, big: int = 100_000) -> dict[str, Any]:
    if not Path("/proc/self/statm").exists():
        return {"rss_growth_1e5_vs_1e3": None}
    done = subprocess.run([sys.executable, "-c", _CHILD, f"{tmp}/rss.db", str(small), str(big)], capture_output=True,
                          text=True, cwd=Path(__file__).resolve().parent.parent, timeout=3600, check=True)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return {"rss_mib_after_1e3": round(out["small"] / 2**20, 2), "rss_mib_after_1e5": round(out["big"] / 2**20, 2),
            "rss_growth_1e5_vs_1e3": round(out["big"] / out["small"], 3), "rss_payments": big,
            "rss_run_s": round(out["seconds"], 1), "audit_verify_s_1e5": round(out["verify_s"], 2),
            "audit_verify_ok_1e5": out["verify_ok"]}
