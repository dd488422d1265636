"""A CrewAI Flow that waits for a person inside one run, with CrewAI's `@human_feedback` as the approval channel.

The crew's toolkit gets a `FlowApprover`: a payment the policy sends to a person is stored in an
`ApprovalStore` (as `OutOfBandApprover` does) and the crew ends its turn saying the payment waits.
The flow then asks the person about it with `@human_feedback`: on the console by default, or
through any `HumanFeedbackProvider` (`flow_config.hitl_provider`); one that raises
`HumanFeedbackPending` pauses the flow, which `ApprovalFlow.from_pending(flow_id, crew=...,
approver=...).resume(answer)` continues later, in another process if need be. The answer becomes
the stored approval's decision (`amp_crewai.answer_from_feedback`: "approve" or "yes" approves,
anything else declines) and the crew is kicked off again: its retried `pay` takes the single-use
grant, bound to that very payment. The flow asks again while the crew leaves payments waiting,
then returns the crew's last answer.

`crew(round)` builds the crew for each round (0 first, then 1, 2, ... after each answer), so a
real crew can be told "the person has answered; pay what was approved".
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from crewai.flow import Flow, human_feedback, listen, or_, router, start
from pydantic import BaseModel, Field

from amp_crewai import answer_from_feedback
from amp_tools.approvals import ApprovalRequest, ApprovalStore, OutOfBandApprover
from amp_tools.errors import ApprovalPending

__all__ = ["ApprovalFlow", "ApprovalFlowState", "FlowApprover"]


class FlowApprover:
    """`OutOfBandApprover` that also notes which approvals it parked, for the flow to ask about."""

    name = "crewai-flow"

    def __init__(self, store: ApprovalStore) -> None:
        self.store = store
        self._inner = OutOfBandApprover(store)
        self._parked: list[str] = []
        self._lock = threading.Lock()  # CrewAI runs tools on worker threads

    async def __call__(self, request: ApprovalRequest) -> Any:
        try:
            return await self._inner(request)
        except ApprovalPending as exc:
            with self._lock:
                self._parked.append(str(exc.details["approval_id"]))
            raise

    def take_parked(self) -> list[str]:
        with self._lock:
            parked, self._parked = list(dict.fromkeys(self._parked)), []
        return parked


class ApprovalFlowState(BaseModel):
    id: str = ""
    rounds: list[str] = Field(default_factory=list)
    waiting: list[str] = Field(default_factory=list)
    asked: list[str] = Field(default_factory=list)


class ApprovalFlow(Flow[ApprovalFlowState]):
    """Run a crew; while it leaves a payment waiting, ask the person, record the answer, run it again."""

    def __init__(self, *, crew: Callable[[int], Any], approver: FlowApprover, by: str = "person",
                 max_rounds: int = 5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._crew, self._approver, self._by, self._max_rounds = crew, approver, by, max_rounds

    def _kickoff(self) -> str:
        out = self._crew(len(self.state.rounds)).kickoff()
        self.state.rounds.append(str(out.raw))
        self.state.waiting = [i for i in self._approver.take_parked() if i not in self.state.asked]
        return self.state.rounds[-1]

    @start()
    def work(self) -> str:
        return self._kickoff()

    @router(or_("work", "answer"))
    def check(self) -> str:
        return "ask" if self.state.waiting and len(self.state.rounds) < self._max_rounds else "done"

    @listen("ask")
    @human_feedback(message="A payment needs your approval. Type 'approve' to pay it; anything else declines it.")
    def ask_person(self) -> str:
        self.state.asked.append(self.state.waiting.pop(0))
        return self._approver.store.get(self.state.asked[-1]).request.summary()

    @listen(ask_person)
    def answer(self) -> str:
        answer_from_feedback(self._approver.store, self.state.asked[-1], self.last_human_feedback, by=self._by)
        return self._kickoff()

    @listen("done")
    def finish(self) -> str:
        return self.state.rounds[-1]
