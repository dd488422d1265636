"""The webhook worker: delivers the outbox's notifications off the payment path.

`Courier.run_once` claims the deliveries that are due for one endpoint and makes one attempt at each.
Every attempt runs under an overall deadline (`attempt_timeout`, connect to last byte: an endpoint
that trickles a byte every two seconds never trips a read timeout, so a read timeout alone is not
enough) and never past the delivery's own deadline (`deadline` seconds after it was queued).
Network errors, timeouts, 429 and 5xx are retried with exponential backoff (`backoff`, doubling, at
most `max_backoff`) up to `attempts`; any other answer ends the delivery at once.

`BackgroundCourier` runs a courier on its own thread and event loop, woken by `kick()` when a new
delivery is queued, so the agent's `pay` only writes a row and returns. ``amp-tools approvals
deliver`` and the owner console (`serve`) run the same courier.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import httpx

from amp_tools.clock import SYSTEM_CLOCK, Clock
from amp_tools.ledger import LedgerBase

from .outbox import Delivery, DeliveryStatus, claim_steps, finish_steps, next_due_steps

__all__ = ["BackgroundCourier", "Courier", "Send"]

log = logging.getLogger("amp_tools.webhook")
#: Posts one delivery's body with the given client; returns the HTTP status.
Send = Callable[[httpx.AsyncClient, Delivery], Awaitable[int]]


class Courier:
    """Attempts the due deliveries of one endpoint (`dest`) and records each outcome."""

    def __init__(self, ledger: LedgerBase, dest: str, send: Send, *, attempts: int = 6, backoff: float = 2.0,
                 max_backoff: float = 300.0, attempt_timeout: float = 10.0, deadline: float = 900.0,
                 clock: Clock | None = None, transport: httpx.AsyncBaseTransport | None = None,
                 batch: int = 20) -> None:
        self.ledger, self.dest, self.send = ledger, dest, send
        self.attempts, self.backoff, self.max_backoff = attempts, backoff, max_backoff
        self.attempt_timeout, self.deadline, self.batch = attempt_timeout, deadline, batch
        self.clock = clock or ledger.clock or SYSTEM_CLOCK
        self.transport = transport

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failed attempt."""
        return float(min(self.max_backoff, self.backoff * 2 ** (attempts - 1)))

    async def run_once(self) -> list[Delivery]:
        """One attempt at every delivery due now; returns them as they stand afterwards."""
        now = self.clock.now()
        # The lease outlives the attempt's deadline: another worker may retry only once this attempt is over.
        lease = now + timedelta(seconds=self.attempt_timeout + 30)
        claimed = await self.ledger.run_write(lambda: claim_steps(self.dest, now, lease, self.batch))
        if not claimed:
            return []
        async with httpx.AsyncClient(timeout=self.attempt_timeout, transport=self.transport,
                                     follow_redirects=False) as client:
            return list(await asyncio.gather(*(self._attempt(client, d) for d in claimed)))

    async def next_due(self) -> datetime | None:
        return await self.ledger.run_read(lambda: next_due_steps(self.dest))

    async def _attempt(self, client: httpx.AsyncClient, delivery: Delivery) -> Delivery:
        age = (self.clock.now() - delivery.created_at).total_seconds()
        budget = min(self.attempt_timeout, self.deadline - age)
        status: int | None = None
        if budget <= 0:
            error = f"not delivered within {self.deadline:g} s of being queued"
        else:
            try:
                # One deadline over the whole exchange (connect, send, every byte of the answer).
                status = await asyncio.wait_for(self.send(client, delivery), budget)
                error = "" if status < 300 else f"HTTP {status}"
            except TimeoutError:
                error = f"no complete answer within {budget:g} s"
            except Exception as exc:  # a network error, or a stored body this version cannot send
                error = type(exc).__name__  # never str(exc): it may quote the URL
        now = self.clock.now()
        outcome: DeliveryStatus = "delivered" if not error else "pending"
        next_at = now
        if error:
            retryable = status is None or status == 429 or status >= 500
            wait = self.delay(delivery.attempts)
            too_late = (now - delivery.created_at).total_seconds() + wait >= self.deadline
            if not retryable or delivery.attempts >= self.attempts or too_late:
                outcome = "failed"
            else:
                next_at = now + timedelta(seconds=wait)
        await self.ledger.run_write(lambda: finish_steps(self.ledger.dialect, delivery, outcome, next_at, status,
                                                         error, now))
        if outcome == "failed":
            log.warning("approval %s: notification to %s failed after %d attempt(s): %s", delivery.approval_id,
                        delivery.host, delivery.attempts, error)
        return Delivery(**{**delivery.__dict__, "status": outcome, "next_at": next_at, "http_status": status,
                           "error": error, "updated_at": now})

    async def serve(self, wake: asyncio.Event | None = None, *, poll: float = 30.0) -> None:
        """Deliver until cancelled: whenever something is due, or `wake` is set."""
        while True:
            try:
                await self.run_once()
                due = await self.next_due()
            except Exception:  # a database hiccup must not end the worker; the rows wait for the next round
                log.exception("webhook delivery round failed")
                due = None
            pause = poll if due is None else max(0.0, min(poll, (due - self.clock.now()).total_seconds()))
            if wake is None:
                await asyncio.sleep(pause)
                continue
            with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
                await asyncio.wait_for(wake.wait(), pause)
            wake.clear()


class BackgroundCourier:
    """A courier on its own daemon thread, started on the first `kick()`; `close()` stops it."""

    def __init__(self, courier: Courier, *, poll: float = 30.0) -> None:
        self.courier, self.poll = courier, poll
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._idle.set()  # nothing owed yet
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def kick(self) -> None:
        """Something new is owed: start the thread if needed and let it look now."""
        self._idle.clear()  # before the thread can finish a round: `close` must wait for this work
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._main, name="amp-webhook-courier", daemon=True)
                self._thread.start()
        self._wake.set()

    def wait_idle(self, timeout: float) -> bool:
        """True once the thread has finished every round that was due (for `close` and tests)."""
        return self._idle.wait(timeout)

    def _main(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            due = None
            try:
                asyncio.run(self.courier.run_once())
                due = asyncio.run(self.courier.next_due())
            except Exception:  # logged; the rows stay in the outbox for the next round
                log.exception("webhook delivery round failed")
            now = self.courier.clock.now()
            if due is None or due > now:
                self._idle.set()
            pause = self.poll if due is None else max(0.0, min(self.poll, (due - now).total_seconds()))
            self._wake.wait(pause)

    def close(self, timeout: float = 5.0) -> None:
        """Give what is due up to `timeout` seconds to go out, then stop after the attempt in flight (each is
        bounded by its deadline). Whatever is still owed stays in the outbox."""
        self._idle.wait(timeout)
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
