"""Approvers: the channels through which a person says yes or no to a payment.

Owns the `Approver` protocol, `ask()` (which normalises sync, async and bool answers) and
four ready approvers:

* `DenyApprover`: the non-interactive default; declines, saying no person is available;
* `CallbackApprover(fn)`: your own sync or async function (a web UI, a chat message);
* `ConsoleApprover`: a rich table and a y/N prompt on the terminal; no TTY or EOF means no;
* `OutOfBandApprover(store)`: persists the request and raises `ApprovalPending`; a person
  answers later with ``amp-tools approvals approve <id>`` and the agent's retry consumes
  the single-use grant.

None of these is reachable from a model's tool call: an approver is given to the Guard by
the program that builds the agent, never by the model, and nothing the model can write
(tool arguments, tool results) is read as an answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import sys
import threading
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Protocol, TypeAlias, TypeVar, runtime_checkable

from rich.console import Console
from rich.table import Table

from amp_tools.approvals.request import ApprovalDecision, ApprovalRequest, compute_binding
from amp_tools.approvals.store import ApprovalRecord, ApprovalStore
from amp_tools.clock import SYSTEM_CLOCK, Clock
from amp_tools.errors import ApprovalPending
from amp_tools.terminal import terminal_safe
from amp_tools.untrusted import clean_text

__all__ = ["Answer", "Approver", "CallbackApprover", "ConsoleApprover", "DenyApprover", "OutOfBandApprover", "ask",
           "ask_yes_no", "off_loop"]

Answer: TypeAlias = bool | ApprovalDecision
T = TypeVar("T")


@runtime_checkable
class Approver(Protocol):
    """Anything that answers an `ApprovalRequest`; it may raise `ApprovalPending`."""

    def __call__(self, request: ApprovalRequest, /) -> Answer | Awaitable[Answer]: ...


def _name_of(approver: object) -> str:
    name = getattr(approver, "name", None)
    return name if isinstance(name, str) and name else type(approver).__name__


async def ask(approver: Approver, request: ApprovalRequest) -> ApprovalDecision:
    """Ask `approver` about `request` and return a decision, whatever shape it answered in."""
    answer = approver(request)
    if inspect.isawaitable(answer):
        answer = await answer
    if isinstance(answer, ApprovalDecision):
        if answer.approver:
            return answer
        return replace(answer, approver=_name_of(approver))  # keeps a grant's id, expiry and signature
    if isinstance(answer, bool):
        return ApprovalDecision(answer, "" if answer else "declined", _name_of(approver))
    raise TypeError(f"approver {_name_of(approver)} answered {answer!r}; expected a bool or an ApprovalDecision")


class DenyApprover:
    """Declines everything: the default when no person has been wired in."""

    name = "deny-default"

    def __call__(self, request: ApprovalRequest) -> ApprovalDecision:
        return ApprovalDecision(
            approved=False,
            reason=("no person is available to approve this payment (no approver is configured, so the default "
                    "declines); ask the user to approve it through their approval channel, or stay within the "
                    "policy's no-confirmation limits"),
            approver=self.name)


class CallbackApprover:
    """Wraps a sync or async function of the request returning bool or `ApprovalDecision`."""

    def __init__(self, fn: Callable[[ApprovalRequest], Answer | Awaitable[Answer]], *, name: str = "callback") -> None:
        self.fn = fn
        self.name = name

    async def __call__(self, request: ApprovalRequest) -> ApprovalDecision:
        answer = self.fn(request)
        if inspect.isawaitable(answer):
            answer = await answer
        if isinstance(answer, ApprovalDecision):
            return answer if answer.approver else ApprovalDecision(answer.approved, answer.reason, self.name)
        if isinstance(answer, bool):
            return ApprovalDecision(answer, "" if answer else "declined by callback", self.name)
        raise TypeError(f"approval callback answered {answer!r}; expected a bool or an ApprovalDecision")


_YES, _NO = ("y", "yes"), ("n", "no", "")


async def off_loop(fn: Callable[..., T], *args: object) -> T:
    """Run a blocking prompt in a daemon thread without stalling the event loop.

    Not `asyncio.to_thread`: on Ctrl-C, `asyncio.run` joins the default executor's threads before
    it returns, so a prompt waiting in `input()` there would hold the process until Enter. A daemon
    thread is left behind, and the interrupt reaches the program at once.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(value: T | None, error: BaseException | None) -> None:
        if done.done():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(value)  # type: ignore[arg-type]

    def work() -> None:
        try:
            value = fn(*args)
        except BaseException as exc:  # EOFError and the rest go to the awaiting task
            with contextlib.suppress(RuntimeError):  # the loop may be closed after an interrupt
                loop.call_soon_threadsafe(settle, None, exc)
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, value, None)

    threading.Thread(target=work, name="amp-tools-prompt", daemon=True).start()
    return await done


def ask_yes_no(reader: Callable[[str], str], question: str, console: Console, *, tries: int = 5) -> bool:
    """Ask until the answer is yes or no (empty means no); anything else is asked again.

    After `tries` unreadable answers the answer is no. EOF propagates as `EOFError`.
    """
    for _ in range(tries):
        answer = reader(question).strip().lower()
        if answer in _YES:
            return True
        if answer in _NO:
            return False
        console.print(f"Please answer y or n (got {clean_text(answer, 20)!r}).", markup=False, highlight=False)
    return False


class ConsoleApprover:
    """Shows the request as a table and asks ``Approve? [y/N]`` on the terminal.

    `input_fn` replaces the prompt (tests, other front ends); without it, a stdin that is not
    a TTY means no person is there and the payment is declined. EOF also declines.
    """

    name = "console"

    def __init__(self, console: Console | None = None, input_fn: Callable[[str], str] | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.input_fn = input_fn

    def render(self, request: ApprovalRequest) -> Table:
        table = Table(title=f"Approval needed ({terminal_safe(request.id)})", show_header=False, expand=False)
        table.add_column("field", style="bold")
        table.add_column("value")
        table.add_row("Action", "refund" if request.action == "refund" else "payment")
        # Merchant text is cleaned and bounded again here, and escaped so it cannot be rich markup.
        table.add_row("Merchant", terminal_safe(f"{request.merchant_text()} ({clean_text(request.merchant_id)})"))
        for item in request.items:
            table.add_row("Item", terminal_safe(f"{item.quantity} x {clean_text(item.name)} "
                                                f"[{clean_text(item.product_id)}] at {item.unit_amount}"))
        table.add_row("Amount", str(request.amount))
        if request.budget_amount.currency != request.amount.currency:
            table.add_row("From budget", str(request.budget_amount))
        table.add_row("Why asked", terminal_safe("\n".join(request.rules)) or "-")
        table.add_row("Budget left after", str(request.budget_left))
        table.add_row("Expires", request.expires_at.isoformat())
        return table

    async def __call__(self, request: ApprovalRequest) -> ApprovalDecision:
        if self.input_fn is None and not sys.stdin.isatty():
            return ApprovalDecision(False, "no terminal is attached, so no person can approve here", self.name)
        self.console.print(self.render(request))
        reader = self.input_fn or input
        try:
            # A blocking prompt must not stall the event loop the rest of the agent runs on.
            yes = await off_loop(ask_yes_no, reader, "Approve this payment? [y/N] ", self.console)
        except EOFError:
            return ApprovalDecision(False, "no answer (end of input)", self.name)
        if yes:
            return ApprovalDecision(True, "approved at the console", self.name)
        return ApprovalDecision(False, "declined at the console", self.name)


class OutOfBandApprover:
    """Parks the request in an `ApprovalStore` until a person answers from outside the agent.

    Each consult (one transaction) first expires stale questions, then answers with a standing
    denial for the same payment (until the owner reopens it), else takes an approved grant
    once, else keeps or opens the pending question and raises `ApprovalPending`.
    `budget_id` names the budget on requests that do not carry one (the inbox shows it).
    """

    name = "out-of-band"

    def __init__(self, store: ApprovalStore, *, clock: Clock | None = None, budget_id: str | None = None) -> None:
        self.store = store
        self.clock = clock or store.clock or SYSTEM_CLOCK
        self.budget_id = budget_id

    async def __call__(self, request: ApprovalRequest) -> ApprovalDecision:
        if self.budget_id and not request.budget_id:
            # Bound too: a request built without its budget gets this approver's, binding included.
            request = replace(request, budget_id=self.budget_id, binding=compute_binding(
                request.action, request.merchant_id, request.amount, request.items, budget_id=self.budget_id,
                checkout_id=request.checkout_id))
        found = await self.store.aconsult(request, self.clock.now())
        if found.decision is not None:
            return found.decision
        assert found.record is not None  # a consult without a decision always returns the pending record
        if found.created:
            await self.announce(found.record)
        pending = found.record.request
        raise ApprovalPending(
            f"this {pending.action} of {pending.amount_text()} to {pending.merchant_text()} "
            f"is waiting for a person's approval (approval id {pending.id}, expires "
            f"{pending.expires_at.isoformat()}). The person approves it in the approval inbox or by running "
            f"`amp-tools approvals approve {pending.id}`.",
            hint=("Tell the user, then call the same tool again with exactly the same arguments once they have "
                  "answered; a changed amount, merchant or basket needs a new approval."),
            details={"approval_id": pending.id, "expires_at": pending.expires_at.isoformat()})

    async def announce(self, record: ApprovalRecord) -> None:
        """Called once per new question; subclasses tell a person (see `WebhookApprover`)."""
