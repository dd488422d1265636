"""Sub-budgets: a crew's or team's budget with one budget per agent inside it.

Owns three things, all pure (no I/O):

* `check_tree`: the rule that a sub-budget only tightens its parent (a cap at most the parent's,
  an allow list within the parent's, an approval rule that asks at least as often), with a
  field path per problem (``agents.hotel_booker.windows.day.limit``);
* `BudgetPath`: the levels a payment of one agent must fit, root first, each with its budget id
  (``trip``, ``trip/hotel_booker``), its effective policy and the budget ids whose spending it
  counts (itself and every descendant);
* `BudgetPath.decide`: `decide` at every level, the first refusal named with its level (the
  crew's total, or the hotel booker's day cap); the verdict asks a person when any level does
  and reports the smallest room left.

The ledger runs `BudgetPath.decide` inside the same transaction that locks every level's budget
row (root to leaf) and moves every level's aggregates, so concurrent agents never exceed a level.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from amp_tools.errors import ConfigError, PolicyViolation
from amp_tools.money import Money
from amp_tools.policy.decide import (
    SpendIntent,
    Usage,
    UsageQuery,
    Verdict,
    approval_reasons,
    decide,
    static_check,
    usage_queries,
)
from amp_tools.policy.model import (
    AgentBudget,
    ApprovalRules,
    BudgetPolicy,
    MccRules,
    MerchantRules,
    matches_merchant,
)

__all__ = ["SEPARATOR", "BudgetLevel", "BudgetPath", "agent_names", "check_tree", "effective_policy"]

#: Joins a parent's budget id and an agent name: ``trip/hotel_booker``.
SEPARATOR = "/"


# ---------------------------------------------------------------------- validation
def _problems(parent: BudgetPolicy, agents: dict[str, AgentBudget], loc: tuple[str, ...]
              ) -> Iterator[tuple[tuple[str, ...], Any, str]]:
    for name, child in agents.items():
        here = (*loc, "agents", name)
        yield from _child_problems(parent, name, child, here)
        yield from _problems(effective_policy(parent, name, child), child.agents, here)


def _child_problems(parent: BudgetPolicy, name: str, child: AgentBudget, here: tuple[str, ...]
                    ) -> Iterator[tuple[tuple[str, ...], Any, str]]:
    who = f"agent {name!r}"
    if child.total_budget is not None and child.total_budget > parent.total_budget:
        yield ((*here, "total_budget"), child.total_budget.amount_str(),
               f"{who} total_budget {child.total_budget} is above its parent's total budget {parent.total_budget}; "
               "a sub-budget may only be smaller")
    own_total = child.total_budget or parent.total_budget
    ceiling = parent.per_transaction_max
    if child.per_transaction_max is not None:
        if ceiling is not None and child.per_transaction_max > ceiling:
            yield ((*here, "per_transaction_max"), child.per_transaction_max.amount_str(),
                   f"{who} per_transaction_max {child.per_transaction_max} is above its parent's "
                   f"per_transaction_max {ceiling}; a sub-budget may only be stricter")
        elif child.per_transaction_max > own_total:
            yield ((*here, "per_transaction_max"), child.per_transaction_max.amount_str(),
                   f"{who} per_transaction_max {child.per_transaction_max} is above its total budget {own_total}")
    for period, cap in child.windows.configured():
        above = getattr(parent.windows, period)
        if above is not None and cap.limit > above.limit:
            yield ((*here, "windows", period, "limit"), cap.limit.amount_str(),
                   f"{who} {period} cap {cap.limit} is above its parent's {period} cap {above.limit}; "
                   "a sub-budget may only be stricter")
    yield from _merchant_problems(parent.merchants, child.merchants, who, (*here, "merchants"))
    yield from _mcc_problems(parent.mccs, child.mccs, who, (*here, "mccs"))
    if child.velocity is not None and parent.velocity is not None and child.velocity.window == \
            parent.velocity.window and child.velocity.max_payments > parent.velocity.max_payments:
        yield ((*here, "velocity", "max_payments"), child.velocity.max_payments,
               f"{who} allows {child.velocity.max_payments} payments per {child.velocity.per}, more than its "
               f"parent's {parent.velocity.max_payments}; a sub-budget may only be stricter")
    yield from _approval_problems(parent.approval, child.approval, who, (*here, "approval"))


def _merchant_problems(parent: MerchantRules, child: MerchantRules, who: str, here: tuple[str, ...]
                       ) -> Iterator[tuple[tuple[str, ...], Any, str]]:
    if parent.allow:
        for index, entry in enumerate(child.allow):
            if not any(matches_merchant(p, entry, entry) for p in parent.allow):
                yield ((*here, "allow", str(index)), entry,
                       f"{who} allows merchant {entry!r}, which its parent's allow list ({', '.join(parent.allow)}) "
                       "does not; a sub-budget's allow list must stay within its parent's")
    for key, cap in child.caps.items():
        above = [value for name, value in parent.caps.items() if matches_merchant(name, key, key)]
        tightest = min(above, key=lambda m: m.minor) if above else None
        if tightest is not None and cap > tightest:
            yield ((*here, "caps", key), cap.amount_str(),
                   f"{who} cap {cap} for merchant {key!r} is above its parent's cap {tightest}")


def _covered(entry: str, parents: list[str]) -> bool:
    low, _, high = entry.partition("-")
    high = high or low
    for other in parents:
        p_low, _, p_high = other.partition("-")
        if p_low <= low and high <= (p_high or p_low):
            return True
    return False


def _mcc_problems(parent: MccRules, child: MccRules, who: str, here: tuple[str, ...]
                  ) -> Iterator[tuple[tuple[str, ...], Any, str]]:
    if parent.allow:
        for index, entry in enumerate(child.allow):
            if not _covered(entry, parent.allow):
                yield ((*here, "allow", str(index)), entry,
                       f"{who} allows MCC {entry}, which its parent's allow list ({', '.join(parent.allow)}) does "
                       "not cover; a sub-budget's allow list must stay within its parent's")
    for code, cap in child.caps.items():
        above = parent.caps.get(code)
        if above is not None and cap > above:
            yield ((*here, "caps", code), cap.amount_str(), f"{who} cap {cap} for MCC {code} is above its "
                                                            f"parent's cap {above}")


def _approval_problems(parent: ApprovalRules, child: ApprovalRules, who: str, here: tuple[str, ...]
                       ) -> Iterator[tuple[tuple[str, ...], Any, str]]:
    written = child.model_fields_set
    if "confirm_above" in written and parent.confirm_above is not None and (
            child.confirm_above is None or child.confirm_above > parent.confirm_above):
        shown = "no threshold" if child.confirm_above is None else f"a threshold of {child.confirm_above}"
        yield ((*here, "confirm_above"), None if child.confirm_above is None else child.confirm_above.amount_str(),
               f"{who} sets {shown}, which loosens its parent's confirm_above {parent.confirm_above}; "
               "a sub-budget may only ask a person more often (a lower threshold)")
    for flag in ("confirm_new_merchants", "confirm_human_present", "confirm_refunds", "confirm_all"):
        if flag in written and getattr(parent, flag) and not getattr(child, flag):
            yield ((*here, flag), False, f"{who} turns off {flag}, which its parent turns on; a sub-budget may "
                                         "only ask a person more often")


def check_tree(policy: BudgetPolicy) -> None:
    """Raise a `ValidationError` (one error per problem, with its field path) when a sub-budget
    anywhere in `policy` loosens its parent."""
    problems = list(_problems(policy, policy.agents, ()))
    if problems:
        raise ValidationError.from_exception_data(type(policy).__name__, [
            InitErrorDetails(type=PydanticCustomError("sub_budget", "{reason}", {"reason": text}), loc=loc,
                             input=value) for loc, value, text in problems])


# ---------------------------------------------------------------------- effective policies
def _min(first: Money | None, second: Money | None) -> Money | None:
    if first is None:
        return second
    if second is None:
        return first
    return first if first <= second else second


def effective_policy(parent: BudgetPolicy, name: str, child: AgentBudget) -> BudgetPolicy:
    """The sub-budget as a complete policy: its own caps, the parent's currency, timezone, expiry and
    negotiation, and lists and approvals merged with the parent's (deny lists add up, an allow list
    narrows, approvals ask when either asks). Caps of the parent are not copied: the parent's level
    checks them on the parent's usage, which includes this agent's."""
    approval = ApprovalRules.model_construct(
        confirm_above=_min(parent.approval.confirm_above, child.approval.confirm_above),
        confirm_new_merchants=parent.approval.confirm_new_merchants or child.approval.confirm_new_merchants,
        confirm_human_present=parent.approval.confirm_human_present or child.approval.confirm_human_present,
        confirm_refunds=parent.approval.confirm_refunds or child.approval.confirm_refunds,
        confirm_all=parent.approval.confirm_all or child.approval.confirm_all)
    merchants = MerchantRules.model_construct(allow=child.merchants.allow or parent.merchants.allow,
                                              deny=[*parent.merchants.deny, *child.merchants.deny],
                                              caps=child.merchants.caps)
    mccs = MccRules.model_construct(allow=child.mccs.allow or parent.mccs.allow,
                                    deny=[*parent.mccs.deny, *child.mccs.deny], caps=child.mccs.caps)
    return BudgetPolicy.model_construct(
        schema_ref=None, name=name, description=child.description, version=parent.version,
        currency=parent.currency, total_budget=child.total_budget or parent.total_budget,
        per_transaction_max=_min(parent.per_transaction_max, child.per_transaction_max),
        timezone=parent.timezone, windows=child.windows, merchants=merchants, mccs=mccs, velocity=child.velocity,
        expires_at=parent.expires_at, approval=approval, negotiation=parent.negotiation, agents=child.agents)


def agent_policies(policy: BudgetPolicy, prefix: str = "") -> list[tuple[str, BudgetPolicy]]:
    """Every agent path in the tree with its effective policy, parents before children; one
    `effective_policy` per agent (linear in the size of the tree)."""
    out: list[tuple[str, BudgetPolicy]] = []
    for name, child in policy.agents.items():
        path, effective = f"{prefix}{name}", effective_policy(policy, name, child)
        out.append((path, effective))
        out.extend(agent_policies(effective, path + SEPARATOR))
    return out


def agent_names(policy: BudgetPolicy, prefix: str = "") -> list[str]:
    """Every agent path in the tree, parents before children (``flight_booker``, ``team/scout``)."""
    return [path for path, _ in agent_policies(policy, prefix)]


# ---------------------------------------------------------------------- the path of one agent
@dataclass(frozen=True)
class BudgetLevel:
    """One level a payment must fit: its budget id, its effective policy, and the budget ids
    whose entries count toward it (itself and every descendant)."""

    budget_id: str
    agent: str  # "" for the root, else the agent path ("hotel_booker", "team/scout")
    policy: BudgetPolicy
    covers: tuple[str, ...]
    parent: str | None

    @property
    def rule_prefix(self) -> str:
        return "".join(f"agents.{part}." for part in self.agent.split(SEPARATOR)) if self.agent else ""

    @property
    def label(self) -> str:
        if not self.agent:
            return f"the shared budget {self.budget_id} (all its agents together)"
        return f"agent {self.agent.rsplit(SEPARATOR, 1)[-1]}'s own budget ({self.budget_id})"

    def refusal(self, exc: PolicyViolation) -> PolicyViolation:
        """The same refusal, naming this level (its budget and the rule's path in the policy file)."""
        details = {key: value for key, value in exc.details.items() if key != "rule"}
        return PolicyViolation(f"{self.label}: {exc.message}", rule=self.rule_prefix + exc.rule, hint=exc.hint,
                               details={**details, "budget_id": self.budget_id})


def _covers(budget_id: str, agents: Mapping[str, AgentBudget]) -> tuple[str, ...]:
    """`budget_id` and the ids of every budget below it. Only the names matter here, so the raw agents are
    walked (building each one's effective policy made every path cost the whole tree's policies)."""
    out = [budget_id]
    for name, child in agents.items():
        out.extend(_covers(f"{budget_id}{SEPARATOR}{name}", child.agents))
    return tuple(out)


@dataclass(frozen=True)
class BudgetPath:
    """The levels of one agent's budget, root first; `levels[-1]` is the agent's own."""

    levels: tuple[BudgetLevel, ...]

    @classmethod
    def of(cls, policy: BudgetPolicy, root_budget_id: str, agent: str | Sequence[str] = ()) -> BudgetPath:
        """The path from the root budget `root_budget_id` (spent under `policy`) to `agent`
        (``"hotel_booker"``, ``"team/scout"`` or a sequence of names; empty for the root itself)."""
        parts = (agent.split(SEPARATOR) if agent else []) if isinstance(agent, str) else list(agent)
        levels = [BudgetLevel(root_budget_id, "", policy, _covers(root_budget_id, policy.agents), None)]
        current, budget_id = policy, root_budget_id
        walked: list[str] = []
        for part in parts:
            child = current.agents.get(part)
            if child is None:
                known = ", ".join(sorted(current.agents)) or "none"
                where = f"agent {SEPARATOR.join(walked)!r}" if walked else "the policy"
                raise ConfigError(f"{where} has no sub-budget {part!r}; its agents are: {known}",
                                  hint="Add it under `agents:` in the policy file, or use one of the names listed.")
            walked.append(part)
            current = effective_policy(current, part, child)
            parent, budget_id = budget_id, f"{budget_id}{SEPARATOR}{part}"
            levels.append(BudgetLevel(budget_id, SEPARATOR.join(walked), current, _covers(budget_id, current.agents),
                                      parent))
        return cls(tuple(levels))

    @property
    def leaf(self) -> BudgetLevel:
        return self.levels[-1]

    @property
    def budget_id(self) -> str:
        return self.leaf.budget_id

    @property
    def parents(self) -> tuple[str, ...]:
        """The ancestors' budget ids, root first."""
        return tuple(level.budget_id for level in self.levels[:-1])

    def usage_queries(self, intent: SpendIntent) -> list[list[UsageQuery]]:
        return [usage_queries(level.policy, intent) for level in self.levels]

    def static_check(self, intent: SpendIntent) -> None:
        """The history-free rules of every level, root first; a refusal names its level."""
        for level in self.levels:
            try:
                static_check(level.policy, intent)
            except PolicyViolation as exc:
                raise level.refusal(exc) from None

    def decide(self, intent: SpendIntent, usages: Sequence[Usage]) -> Verdict:
        """`decide` at every level with that level's usage (root first). Refused at the first level
        that refuses; allowed with every level's approval reasons and the smallest room left."""
        if len(usages) != len(self.levels):
            raise ConfigError(f"{len(usages)} usage answers for {len(self.levels)} budget levels")
        verdicts: list[Verdict] = []
        for level, usage in zip(self.levels, usages, strict=True):
            try:
                verdicts.append(decide(level.policy, intent, usage))
            except PolicyViolation as exc:
                raise level.refusal(exc) from None
        checked: list[str] = []
        for level, verdict in zip(self.levels, verdicts, strict=True):
            checked.extend(level.rule_prefix + rule for rule in verdict.checked_rules)
        left = min((v.budget_left for v in verdicts), key=lambda m: m.minor)
        return Verdict(_merged(v.approval_reasons for v in verdicts), left, tuple(checked))

    def approval_reasons(self, intent: SpendIntent, seen: Sequence[bool]) -> tuple[str, ...]:
        """The reasons `decide` gives for an allowed payment when each level has (or has not) seen the
        merchant (`seen`, root first): every level's reasons, each once, in level order."""
        return _merged(approval_reasons(level.policy, intent, level_seen)
                       for level, level_seen in zip(self.levels, seen, strict=True))


def _merged(per_level: Iterable[tuple[str, ...]]) -> tuple[str, ...]:
    reasons: list[str] = []
    for level_reasons in per_level:
        reasons.extend(r for r in level_reasons if r not in reasons)
    return tuple(reasons)
