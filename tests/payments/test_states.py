"""The state machine itself: the table, the ledger refusing (and recording) moves it does not allow, owners and
leases."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from amp_tools.clock import ManualClock
from amp_tools.ledger import InvalidTransition
from amp_tools.payments import TRANSITIONS, Lifecycle, PaymentState, allowed_from, state_of
from amp_tools.payments.owner import _HOST, current_owner, owner_alive
from amp_tools.payments.states import HELD
from tests.ledger._ledger_helpers import intent, open_backend, policy

S = PaymentState


def test_every_state_is_reachable_and_released_is_final() -> None:
    reached = {S.RESERVED}
    frontier = [S.RESERVED]
    while frontier:
        for nxt in TRANSITIONS[frontier.pop()]:
            if nxt not in reached:
                reached.add(nxt)
                frontier.append(nxt)
    assert reached == set(S)
    assert TRANSITIONS[S.RELEASED] == frozenset()
    # Money leaves "held" only by being posted or released, and only from sending/unknown can it be posted.
    assert allowed_from(S.COMMITTED) == ("sending", "unknown")
    assert set(allowed_from(S.RELEASED)) == {str(s) for s in HELD}
    assert allowed_from(S.SENDING) == ("awaiting_approval", "reserved")


@pytest.fixture
def clock() -> ManualClock:
    from tests.ledger._ledger_helpers import START

    return ManualClock(START)


@pytest.fixture
async def life(engine_name: str, ledger_target: str, clock: ManualClock) -> Any:
    ledger = open_backend(engine_name, ledger_target, clock)
    yield Lifecycle(ledger, clock=clock, lease=timedelta(seconds=60))
    await ledger.close()


async def test_the_ledger_refuses_moves_the_table_does_not_allow(life: Lifecycle) -> None:
    res = await life.reserve(intent("5.00"), policy(), budget_id="b", key="k1")
    with pytest.raises(InvalidTransition):
        await life.commit(res.id, external_ref="TX")  # never posted before it was sent
    sent = await life.sending(res.id, resume="sealed-blob")
    assert state_of(sent) == S.SENDING and sent.resume == "sealed-blob" and sent.owner == current_owner()
    with pytest.raises(InvalidTransition) as back:
        await life.awaiting_approval(res.id)  # no way back once the request may have left
    assert back.value.current == "sending" and back.value.code == "INVALID_TRANSITION"
    lost = await life.unknown(res.id, "answer lost")
    assert state_of(lost) == S.UNKNOWN and lost.owner is None and lost.resume == "sealed-blob"
    done = await life.commit(res.id, external_ref="TX")
    assert state_of(done) == S.COMMITTED and done.resume is None and done.phase is None
    with pytest.raises(InvalidTransition):
        await life.unknown(res.id, "too late")
    records = await life.ledger.audit.records()
    assert [r.kind for r in records] == ["reserve", "move_refused", "transition", "move_refused", "transition",
                                         "commit", "move_refused"]
    refused = [(r.payload["from"], r.payload["to"]) for r in records if r.kind == "move_refused"]
    assert refused == [("reserved", "committed"), ("sending", "awaiting_approval"), ("committed", "unknown")]
    assert (await life.ledger.audit.verify()).ok


async def test_heartbeat_renews_only_the_owners_live_payments(life: Lifecycle, clock: ManualClock) -> None:
    res = await life.reserve(intent("5.00"), policy(), budget_id="b", key="k2")
    first = (await life.ledger.get(res.id)).lease_until
    clock.advance(seconds=30)
    assert await life.heartbeat((res.id,)) == 1
    renewed = (await life.ledger.get(res.id)).lease_until
    assert first is not None and renewed is not None and renewed - first == timedelta(seconds=30)
    other = Lifecycle(life.ledger, clock=clock, owner="elsewhere|1|1")
    assert await other.heartbeat((res.id,)) == 0  # not its payment
    await life.release(res.id, "done")
    assert await life.heartbeat((res.id,)) == 0  # out of flight


def test_owner_liveness_by_process_here_and_by_lease_elsewhere(clock: ManualClock) -> None:
    now = clock.now()
    assert owner_alive(current_owner(), None, now)  # this process, whatever the lease says
    assert not owner_alive(f"{_HOST}|999999999|1", now + timedelta(days=1), now)  # a dead pid here: gone
    host, pid, _start = current_owner().split("|")
    assert not owner_alive(f"{host}|{pid}|not-my-start-time", None, now)  # a reused pid is not the owner
    assert owner_alive("other-host|12|34", now + timedelta(seconds=1), now)
    assert not owner_alive("other-host|12|34", now - timedelta(seconds=1), now)
    assert not owner_alive(None, None, now)
