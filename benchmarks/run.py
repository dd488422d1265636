"""Run every benchmark once, print the figures against their targets, write ``results/latest.json``.

    .venv/bin/python -m benchmarks                 # the full run (about 3-5 minutes on 2 cores)
    .venv/bin/python -m benchmarks --quick         # tiny sizes: checks the harness, figures mean nothing
    .venv/bin/python -m benchmarks --repeat 5      # five full runs, medians in results/medians.json
    .venv/bin/python -m benchmarks --only guard,ledger --repeat 5   # some steps only

Ratios are measured inside one run (bare and guarded interleaved, 10^3 and 10^6 rows on the same
database), so a busy machine moves both sides of each ratio alike; absolute rates move with it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import demo, guard_overhead, imports, ledger_tps, memory, pg_budgets, scale

__all__ = ["TARGETS", "main", "run_once"]

RESULTS = Path(__file__).resolve().parent / "results"

#: key -> (comparison, target); "<=" means at most, ">=" at least.
TARGETS: dict[str, tuple[str, float]] = {
    "guard_overhead_ratio": ("<=", 1.10),
    "sqlite_tps_1p": (">=", 5000),
    "pg_tps_8p": (">=", 2000),
    "overspend": ("<=", 0),
    "scale_ratio_1e6_vs_1e3": ("<=", 1.2),
    "import_ms_core": ("<=", 150),
    # Each figure beside its floor, measured in the same run (the targets of issue 24).
    "guard_added_vs_floor": ("<=", 2.0),
    "guard_overhead_ratio_tcp": ("<=", 1.30),
    "sqlite_tps_1p_vs_floor": (">=", 0.9),
    "pg_scale_8p_separate": (">=", 4.0),
    "pg_shared_vs_floor": (">=", 0.5),
    "cpu_ms_per_payment_pg": ("<=", 1.0),
    "pg_reserve_ratio_1e4_budgets": ("<=", 1.2),
    "rss_growth_1e5_vs_1e3": ("<=", 1.2),
}


def _machine() -> dict[str, Any]:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            cpu = next((ln.split(":", 1)[1].strip() for ln in handle if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "platform": platform.platform(), "load_1m_at_start": load}


def _git() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parent, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def run_once(*, quick: bool = False, pg_url: str | None = ledger_tps.PG_URL, with_demo: bool = True,
             log: Any = print, only: frozenset[str] | None = None) -> dict[str, Any]:
    """One run of every benchmark; returns the result dict (also what ``latest.json`` holds)."""
    result: dict[str, Any] = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "quick": quick,
                              "commit": _git(), "machine": _machine()}
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="amp-bench-") as tmp:
        steps: list[tuple[str, Any]] = [
            ("guard", lambda: guard_overhead.measure(samples=4 if quick else 60, warmup=1 if quick else 5)),
            ("ledger", lambda: ledger_tps.measure(tmp, ops_1p=40 if quick else 1500, ops_np=5 if quick else 150,
                                                  procs=2 if quick else 8, pg_url=pg_url)),
            ("scale", lambda: scale.measure(tmp, sizes=(10, 100, 1000) if quick else (1_000, 100_000, 1_000_000),
                                            samples=10 if quick else 200)),
            ("budgets", lambda: pg_budgets.measure(pg_url, budgets=100 if quick else 10_000,
                                                samples=5 if quick else 200)),
            ("memory", lambda: memory.measure(tmp, small=10 if quick else 1_000, big=50 if quick else 100_000)),
            ("imports", lambda: imports.measure(repeats=1 if quick else 5, adapter_repeats=1, adapters=() if quick else
                                                ("amp_langchain", "amp_crewai", "amp_autogen"))),
        ]
        if with_demo and not quick:
            steps.append(("demo", lambda: demo.measure(tmp)))
        for name, step in steps:
            if only is not None and name not in only:
                continue
            started = time.perf_counter()
            figures = step()
            timings[name] = round(time.perf_counter() - started, 1)
            result.update(figures)
            log(f"  {name:<8} {timings[name]:>6.1f}s  " + ", ".join(f"{k}={v}" for k, v in figures.items()
                                                                  if not isinstance(v, list | dict)))
    result["seconds"] = timings
    result["targets"] = {key: {"target": f"{op} {goal:g}", "value": result.get(key),
                               "met": _met(result.get(key), op, goal)} for key, (op, goal) in TARGETS.items()}
    return result


def _met(value: Any, op: str, goal: float) -> bool | None:
    if value is None:
        return None
    return bool(value <= goal) if op == "<=" else bool(value >= goal)


def _write(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _table(result: dict[str, Any]) -> str:
    lines = [f"{'figure':<30}{'value':>14}  target      met"]
    for key, info in result["targets"].items():
        met = {True: "yes", False: "NO", None: "n/a"}[info["met"]]
        lines.append(f"{key:<30}{info['value']!s:>14}  {info['target']:<10}  {met}")
    lines.append(f"{'cpu_ms_per_payment_sqlite':<30}{result.get('cpu_ms_per_payment_sqlite')!s:>14}  none")
    lines.append(f"{'import_framework_modules':<30}{json.dumps(result.get('import_framework_modules'))!s:>14}"
                 "  none        " + ("yes" if result.get("import_framework_modules") == [] else "NO"))
    return "\n".join(lines)


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of every numeric figure across runs (booleans and lists from the last run)."""
    out: dict[str, Any] = {"runs": len(runs), "machine": runs[-1]["machine"], "commit": runs[-1]["commit"]}
    for key, value in runs[-1].items():
        values = [r.get(key) for r in runs]
        if isinstance(value, int | float) and not isinstance(value, bool) and all(
                isinstance(v, int | float) for v in values):
            out[key] = round(statistics.median(values), 4)
            out[f"{key}__all"] = values
        elif key not in out and key not in ("when", "targets", "seconds"):
            out[key] = value
    out["targets"] = {key: {"target": f"{op} {goal:g}", "value": out.get(key),
                            "met": _met(out.get(key), op, goal)} for key, (op, goal) in TARGETS.items()}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, no demo: checks the harness only")
    parser.add_argument("--repeat", type=int, default=1, help="full runs; medians go to results/medians.json")
    parser.add_argument("--pg", default=os.environ.get("AMP_BENCH_PG_URL", ledger_tps.PG_URL),
                        help="PostgreSQL URL (an isolated schema is created and dropped); '' to skip")
    parser.add_argument("--no-demo", action="store_true", help="skip the framework demo wall times")
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json", help="where the run's JSON goes")
    parser.add_argument("--only", default="", help="comma-separated steps to run (guard, ledger, scale, budgets, "
                        "memory, imports, demo); the others' figures are missing from the result")
    opts = parser.parse_args(argv)
    only = frozenset(name.strip() for name in opts.only.split(",") if name.strip()) or None
    runs = []
    for n in range(opts.repeat):
        print(f"run {n + 1}/{opts.repeat}{' (quick)' if opts.quick else ''}", flush=True)
        result = run_once(quick=opts.quick, pg_url=opts.pg or None, with_demo=not opts.no_demo,
                          log=lambda line: print(line, flush=True), only=only)
        _write(result, opts.out)
        runs.append(result)
        print(_table(result), flush=True)
    if opts.repeat > 1:
        summary = medians(runs)
        _write(summary, opts.out.with_name("medians.json"))
        print(f"medians of {len(runs)} runs\n" + _table(summary))
    print(f"wrote {opts.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
