"""The benchmark harness runs end to end in quick mode and writes every key; no timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGETS = {"guard_overhead_ratio", "sqlite_tps_1p", "pg_tps_8p", "overspend", "scale_ratio_1e6_vs_1e3",
           "import_ms_core", "guard_added_vs_floor", "guard_overhead_ratio_tcp", "sqlite_tps_1p_vs_floor",
           "pg_scale_8p_separate", "pg_shared_vs_floor", "pg_reserve_ratio_1e4_budgets", "rss_growth_1e5_vs_1e3",
           "cpu_ms_per_payment_pg"}

KEYS = ("guard_overhead_ratio", "sqlite_tps_1p", "sqlite_tps_8p", "pg_tps_8p", "overspend", "scale_ratio_1e6_vs_1e3",
        "import_ms_core", "import_framework_modules", "guard_added_vs_floor", "guard_overhead_ratio_tcp",
        "sqlite_tps_1p_vs_floor", "rss_growth_1e5_vs_1e3", "cpu_ms_per_payment_sqlite", "audit_verify_s_1e5")


def test_quick_run_writes_every_key_and_never_overspends(tmp_path: Path) -> None:
    out = tmp_path / "latest.json"
    # The documented command itself, from the repo root (benchmarks/ is not an installed package).
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--pg", "", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    for key in KEYS:
        assert key in result, key
    assert result["overspend"] == 0
    assert result["import_framework_modules"] == []
    assert result["pg_tps_8p"] is None  # skipped on request, reported as missing rather than invented
    assert result["guard_audit_ok"] is True
    # Every guarded sample (plus warm-up) committed one ledger entry and the sandbox saw both sides pay.
    assert result["guard_committed_entries"] == result["guard_samples"] + 1
    assert result["guard_sandbox_payments"] == 2 * result["guard_committed_entries"]
    # Over loopback HTTP too, and every figure's floor is measured in the same run (positive, finite).
    assert result["guard_audit_ok_tcp"] is True
    assert result["guard_sandbox_payments_tcp"] == 2 * result["guard_committed_entries_tcp"]
    assert result["sqlite_commit_ms"] > 0 and result["sqlite_floor_tps"] > 0
    assert result["rss_payments"] == 50 and result["rss_mib_after_1e5"] > 0
    assert result["audit_verify_ok_1e5"] is True and result["audit_verify_s_1e5"] >= 0
    assert result["pg_reserve_ratio_1e4_budgets"] is None and result.get("pg_scale_8p_separate") is None
    assert set(result["targets"]) == TARGETS
