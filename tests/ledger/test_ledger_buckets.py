"""Window sums from hour/day buckets equal the brute-force sum over the rows, for any history
(releases and refunds included) and any window start, aligned or not; v1 databases migrate."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from amp_tools.clock import ManualClock
from amp_tools.ledger import LedgerBase
from amp_tools.ledger._ops import figure_steps
from amp_tools.ledger._sql import to_us
from amp_tools.ledger.schema import SCHEMA_VERSION
from amp_tools.money import Money
from amp_tools.policy.windows import PERIODS, calendar_start, rolling_start
from tests.ledger._ledger_helpers import START, downgrade_to_v2, intent, open_backend, policy, raw_sync

MERCHANTS = ["shop-0", "shop-1", "shop-2"]
MCCS = ["5812", "4511", None]
ZONES = ["UTC", "Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns", "Pacific/Chatham"]


def _history(ledger: LedgerBase, clock: ManualClock, seed: int, ops: int) -> None:
    """Random payments over 40 days before START; some released, some committed and refunded."""
    rng = random.Random(seed)
    pol = policy(total_budget="100000000.00")
    live: list[int] = []
    committed: list[int] = []
    for n in range(ops):
        at = START - timedelta(microseconds=rng.randrange(40 * 86_400_000_000)) + timedelta(hours=3)
        pick = rng.randrange(3)
        res = ledger.reserve_sync(intent(f"{rng.randrange(1, 500)}.{rng.randrange(100):02d}", at=at,
                                         merchant=MERCHANTS[pick], mcc=MCCS[rng.randrange(3)], checkout=f"c{n}"),
                                  pol, budget_id="b", idempotency_key=f"k{n}", run_id="r", now=at)
        live.append(res.id)
        roll = rng.random()
        if roll < 0.2:
            ledger.release_sync(live.pop(rng.randrange(len(live))), reason="declined")
        elif roll < 0.6:
            entry = ledger.commit_sync(live.pop(rng.randrange(len(live))), external_ref=f"p{n}")
            committed.append(entry.id)
        if committed and rng.random() < 0.3:
            entry = ledger.get_sync(rng.choice(committed))
            if entry.refundable.is_positive():
                part = rng.randrange(1, entry.refundable.minor + 1)
                ledger.refund_sync(entry.id, Money(part, "USD"), external_ref=f"rf{n}")
        clock.advance(rng.randrange(1, 4000))  # releases/refunds happen later than the payment


def _brute(ledger: LedgerBase, scope: str, key: str | None, since: datetime) -> tuple[int, int]:
    cond = {"all": "", "merchant": " AND merchant_id = ?", "mcc": " AND mcc = ?"}[scope]
    params = ("b", to_us(since)) if scope == "all" else ("b", to_us(since), key)
    rows = raw_sync(ledger, "SELECT COALESCE(SUM(counted_minor), 0), COUNT(*) FROM entries WHERE budget_id = ? "
                            f"AND counts = 1 AND created_at >= ?{cond}", *params)
    return int(rows[0][0]), int(rows[0][1])


def _starts(rng: random.Random) -> list[datetime]:
    out = []
    for _ in range(12):
        now = START - timedelta(microseconds=rng.randrange(45 * 86_400_000_000))
        for zone in ZONES:
            tz = UTC if zone == "UTC" else ZoneInfo(zone)
            out.extend(calendar_start(period, now, tz) for period in PERIODS)
        out.extend(rolling_start(now, timedelta(seconds=s)) for s in (90, 3600, 86400, 7 * 86400, 30 * 86400))
    out.append(START - timedelta(days=400))  # before all history
    out.append(START + timedelta(days=2))  # after it
    return out


def test_bucketed_window_sums_equal_brute_force(backend: str, target: str) -> None:
    clock = ManualClock(START)
    ledger = open_backend(backend, target, clock)
    try:
        _history(ledger, clock, seed=11, ops=160 if backend == "sqlite" else 90)
        statuses = {str(r[0]) for r in raw_sync(ledger, "SELECT DISTINCT status FROM entries")}
        assert statuses == {"reserved", "committed", "released"}
        assert raw_sync(ledger, "SELECT COUNT(*) FROM refunds")[0][0] > 0
        rng = random.Random(5)
        checked = 0
        for since in _starts(rng):
            for scope, key in [("all", None), *(("merchant", m) for m in MERCHANTS),
                               *(("mcc", m) for m in MCCS if m is not None)]:
                got = ledger._run_read_sync(lambda s=scope, k=key, t=since: figure_steps("b", s, k, t))
                assert got == _brute(ledger, scope, key, since), (scope, key, since)
                checked += 1
        assert checked > 1000
    finally:
        ledger.close_sync()


def test_release_and_refund_lower_the_original_bucket(ledger: LedgerBase, clock: ManualClock) -> None:
    pol = policy(total_budget="1000.00")
    paid_at = START - timedelta(hours=30, minutes=20)
    first = ledger.reserve_sync(intent("40.00", at=paid_at), pol, budget_id="b", idempotency_key="k1", now=paid_at)
    second = ledger.reserve_sync(intent("25.00", at=paid_at, checkout="c2"), pol, budget_id="b",
                                 idempotency_key="k2", now=paid_at)
    ledger.commit_sync(first.id, external_ref="p1")
    ledger.refund_sync(first.id, Money(1500, "USD"), external_ref="rf1")  # the clock is a day later
    ledger.release_sync(second.id, reason="declined")
    hour = to_us(paid_at) - to_us(paid_at) % 3_600_000_000
    rows = raw_sync(ledger, "SELECT scope, key, width, start, used_minor, used_count FROM usage_buckets "
                            "WHERE budget_id = 'b' ORDER BY scope, key, width")
    day = hour - hour % 86_400_000_000
    expected = [(scope, key, w, hour if w == 3_600_000_000 else day, 2500, 1)
                for scope, key in (("all", ""), ("mcc", "5812"), ("merchant", "shop-1"))
                for w in (3_600_000_000, 86_400_000_000)]
    assert [(str(r[0]), str(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5])) for r in rows] == expected
    # Nothing was moved into the hour or day of the release/refund (now, START).
    since_today = ledger._run_read_sync(lambda: figure_steps("b", "all", None, START - timedelta(hours=1)))
    assert since_today == (0, 0)
    since_paid = ledger._run_read_sync(lambda: figure_steps("b", "all", None, paid_at))
    assert since_paid == (2500, 1)


def test_v1_database_is_migrated_and_backfilled(backend: str, target: str) -> None:
    clock = ManualClock(START)
    ledger = open_backend(backend, target, clock)
    try:
        _history(ledger, clock, seed=3, ops=40)
        cols = "budget_id, scope, key, width, start, used_minor, used_count"
        before = sorted(tuple(r) for r in raw_sync(ledger, f"SELECT {cols} FROM usage_buckets "
                                                           "WHERE used_count <> 0 OR used_minor <> 0"))
        assert before
        # Turn it back into a version-1 database.
        downgrade_to_v2(ledger)
        raw_sync(ledger, "DROP TABLE usage_buckets")
        raw_sync(ledger, "DELETE FROM schema_version WHERE version > 1")
    finally:
        ledger.close_sync()
    again = open_backend(backend, target, clock)
    try:
        assert raw_sync(again, "SELECT MAX(version) FROM schema_version")[0][0] == SCHEMA_VERSION
        after = sorted(tuple(r) for r in raw_sync(again, f"SELECT {cols} FROM usage_buckets"))
        assert after == before
    finally:
        again.close_sync()
