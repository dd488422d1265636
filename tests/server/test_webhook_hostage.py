"""A webhook endpoint cannot hold a payment hostage.

Two hostile endpoints on 127.0.0.1: one accepts the request and never answers, one answers a byte
at a time (each byte well inside any read timeout). `pay` must return APPROVAL_PENDING while the
endpoint still holds the worker's connection, and the worker must cut a trickle off at its deadline.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from amp_tools.approvals import WebhookApprover
from amp_tools.approvals.outbox import list_steps
from amp_tools.errors import ApprovalPending
from tests.server._server_helpers import World

SECRET = "a-webhook-secret-of-32-characters!"


class Hostile:
    """A one-connection-at-a-time HTTP endpoint that is silent, or trickles its answer."""

    def __init__(self, mode: str, every: float = 0.2) -> None:
        self.mode, self.every = mode, every
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.holding = threading.Event()  # a request arrived and is being held
        self.release = threading.Event()
        self.trickled = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.release.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                self.holding.set()
                if self.mode == "trickle":
                    try:
                        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
                        while not self.release.wait(self.every):
                            conn.sendall(b".")
                            self.trickled += 1
                    except OSError:
                        pass  # the worker hung up: what it should do at its deadline
                else:
                    self.release.wait(30)

    def close(self) -> None:
        self.release.set()
        self.thread.join(10)
        self.sock.close()


@pytest.fixture
def world(tmp_path: Path) -> Any:
    return lambda approver_holder: World(tmp_path, approver=approver_holder)


class _Late:
    def __init__(self) -> None:
        self.approver: Any = None

    async def __call__(self, request: Any) -> Any:
        return await self.approver(request)


@pytest.mark.parametrize("mode", ["silent", "trickle"])
async def test_pay_answers_while_the_endpoint_holds_the_connection(world: Any, mode: str) -> None:
    endpoint = Hostile(mode)
    late = _Late()
    w = world(late)
    # Generous deadlines: the worker is still inside its attempt when the assertions run.
    late.approver = WebhookApprover(w.agent_store, f"http://127.0.0.1:{endpoint.port}/hook", SECRET,
                                    budget_id="trip", attempt_timeout=60, deadline=600)
    try:
        asked = await w.try_pay(await w.flight_checkout())
        assert isinstance(asked, ApprovalPending)  # pay has returned ...
        assert endpoint.holding.wait(30)  # ... and the worker's request is (or soon is) held by the endpoint
        [row] = await w.inbox_ledger.run_read(lambda: list_steps())
        # ... and the delivery is still in flight: pay never waited for it.
        assert (row.status, row.attempts, row.error) == ("pending", 1, "")
        assert not late.approver.background.wait_idle(0)
    finally:
        endpoint.close()
        late.approver.close()
        await w.close()


async def test_a_trickling_endpoint_is_cut_off_at_the_attempt_deadline(world: Any) -> None:
    endpoint = Hostile("trickle", every=0.1)
    late = _Late()
    w = world(late)
    # The client's read timeout equals the attempt deadline (1 s) and a byte comes every 0.1 s: only
    # the overall deadline can end this attempt.
    late.approver = WebhookApprover(w.agent_store, f"http://127.0.0.1:{endpoint.port}/hook", SECRET,
                                    budget_id="trip", attempt_timeout=1.0, deadline=600, background=False)
    try:
        asked = await w.try_pay(await w.flight_checkout())
        assert isinstance(asked, ApprovalPending)
        [result] = await late.approver.deliver_due()
        assert endpoint.trickled >= 2 and not endpoint.release.is_set()  # it was still trickling when cut
        assert result.status == "pending" and result.error == "no complete answer within 1 s"
        [row] = await w.inbox_ledger.run_read(lambda: list_steps())
        assert (row.status, row.attempts, row.error) == ("pending", 1, "no complete answer within 1 s")
        assert row.next_at > row.updated_at  # retried later, with backoff
    finally:
        endpoint.close()
        await w.close()
