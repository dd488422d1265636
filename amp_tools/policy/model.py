"""The budget policy a user writes: its pydantic model, field by field.

Owns the vocabulary of a policy file and its validation; nothing here reads files (see
`loader`) or decides a payment (see `decide`).

Amounts are written as decimal *strings* (or whole numbers) in the policy currency and held
as `Money`. A float such as ``12.5`` is refused: YAML, TOML and JSON floats are binary
approximations, so the file must say ``"12.50"``. Because every amount depends on the
top-level ``currency``, `BudgetPolicy` validates with that currency in a context variable
that the amount fields read.

Matching rules, stated once:

* merchant entries (allow, deny, cap keys) match a merchant's id *or* its name, compared
  case-insensitively after trimming spaces;
* MCC entries are 4-digit codes (``"7011"``) or inclusive ranges (``"3000-3299"``);
* a deny list always wins over an allow list; an empty allow list allows everything.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from amp_tools.errors import MoneyError
from amp_tools.money import Money, normalize_currency
from amp_tools.policy.windows import PERIODS, Mode, Period, parse_duration, resolve_timezone

__all__ = [
    "AgentBudget",
    "ApprovalRules",
    "BudgetPolicy",
    "MccRules",
    "MerchantRules",
    "NegotiationRules",
    "VelocityLimit",
    "WindowCap",
    "Windows",
    "matches_mcc",
    "matches_merchant",
    "normalize_mcc",
]

# The policy currency while a BudgetPolicy is being validated; amount fields parse with it.
_CURRENCY: ContextVar[str | None] = ContextVar("amp_tools_policy_currency", default=None)
# When the currency itself is missing or wrong, amounts are still checked for shape with the
# widest exponent in the ISO table; validation fails anyway on the currency field.
_SHAPE_ONLY_CURRENCY = "CLF"

_AMOUNT_JSON_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "pattern": r"^[0-9]{1,15}(\.[0-9]{1,4})?$"},
        {"type": "integer", "minimum": 0},
    ],
    "examples": ["300.00", "49.90", 1000],
}


def _amount_validator(*, allow_zero: bool) -> Any:
    def validate(value: object) -> Money:
        currency = _CURRENCY.get()
        if isinstance(value, Money):
            if currency is not None and value.currency != currency:
                raise PydanticCustomError("amount_currency", "{reason}", {
                    "reason": f"amount {value} is not in the policy currency {currency}"})
            return value
        if isinstance(value, float):
            shown = repr(value)
            raise PydanticCustomError("amount_float", "{reason}", {
                "reason": f"amount {shown} is written as a float, which is not exact money; "
                          f"quote it as a decimal string such as \"{_suggest(value)}\""})
        if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
            raise PydanticCustomError("amount_type", "{reason}", {
                "reason": f"amount {value!r} is not a decimal string; expected a string such as \"300.00\""})
        try:
            money = Money.parse(value, currency or _SHAPE_ONLY_CURRENCY, allow_zero=allow_zero)
        except MoneyError as exc:
            reason = exc.message
            if not allow_zero and "zero" in reason:
                reason += " (a cap of zero would refuse everything; remove the rule or give a positive limit)"
            raise PydanticCustomError("amount", "{reason}", {"reason": reason}) from None
        return money

    return validate


def _suggest(value: float) -> str:
    text = repr(value)
    return text if "e" not in text.lower() else format(Decimal(text), "f")


def _serialize_amount(value: Money) -> str:
    return value.amount_str()


#: A positive amount in the policy currency (caps, budgets).
PositiveAmount = Annotated[
    Money,
    PlainValidator(_amount_validator(allow_zero=False)),
    PlainSerializer(_serialize_amount, return_type=str),
    WithJsonSchema(_AMOUNT_JSON_SCHEMA),
]
#: A non-negative amount in the policy currency (thresholds where zero means "always").
Amount = Annotated[
    Money,
    PlainValidator(_amount_validator(allow_zero=True)),
    PlainSerializer(_serialize_amount, return_type=str),
    WithJsonSchema(_AMOUNT_JSON_SCHEMA),
]


def _key(text: str) -> str:
    return text.strip().casefold()


def matches_merchant(entry: str, merchant_id: str, merchant_name: str) -> bool:
    """True when a policy entry names this merchant by id or by name (case-insensitive)."""
    key = _key(entry)
    return key != "" and key in (_key(merchant_id), _key(merchant_name))


def normalize_mcc(value: object) -> str:
    """A 4-digit MCC or an inclusive range ``"3000-3299"``; ints (YAML ``7011``) are accepted."""
    if isinstance(value, bool):
        raise ValueError(f"MCC {value!r} is not a code; expected 4 digits such as \"7011\" or a range \"3000-3299\"")
    if isinstance(value, int):
        if not 0 <= value <= 9999:
            raise ValueError(f"MCC {value} is out of range; expected 4 digits such as \"7011\"")
        return f"{value:04d}"
    if not isinstance(value, str):
        raise ValueError(f"MCC {value!r} is not a string; expected 4 digits such as \"7011\" or a range \"3000-3299\"")
    text = value.strip().replace(" ", "")
    if len(text) == 4 and text.isascii() and text.isdigit():
        return text
    low, sep, high = text.partition("-")
    if sep and len(low) == 4 and len(high) == 4 and (low + high).isascii() and (low + high).isdigit():
        if low > high:
            raise ValueError(f"MCC range {value!r} runs backwards; "
                             "expected the lower code first, such as \"3000-3299\"")
        return f"{low}-{high}"
    raise ValueError(f"MCC {value!r} is not understood; expected 4 digits such as \"7011\" or a range \"3000-3299\"")


def matches_mcc(entry: str, mcc: str | None) -> bool:
    """True when a normalised MCC entry (code or range) covers `mcc`."""
    if mcc is None:
        return False
    code = mcc.strip()
    if not (len(code) == 4 and code.isascii() and code.isdigit()):
        return False
    low, _, high = entry.partition("-")
    return low <= code <= (high or low)


def expand_mccs(entries: list[str]) -> Iterator[str]:
    """Every single code covered by `entries`, in order, without duplicates."""
    seen: set[str] = set()
    for entry in entries:
        low, _, high = entry.partition("-")
        for number in range(int(low), int(high or low) + 1):
            code = f"{number:04d}"
            if code not in seen:
                seen.add(code)
                yield code


def _custom(kind: str, reason: str) -> PydanticCustomError:
    return PydanticCustomError(kind, "{reason}", {"reason": reason})


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WindowCap(_Section):
    """A spending cap over one hour, day, week or month."""

    limit: PositiveAmount = Field(description="Most that may be spent in one window, in the policy currency, "
                                              "as a decimal string such as \"300.00\".")
    mode: Mode = Field("calendar", description="'calendar': the window is the current clock hour / day / week "
                                               "(Monday to Sunday) / month in the policy timezone. 'rolling': the "
                                               "window is the last 1 hour / 24 hours / 7 days / 30 days.")


class Windows(_Section):
    """Caps per time window; leave a period out to have no cap for it."""

    hour: WindowCap | None = Field(None, description="Cap per hour.")
    day: WindowCap | None = Field(None, description="Cap per day.")
    week: WindowCap | None = Field(None, description="Cap per week; calendar weeks start on Monday.")
    month: WindowCap | None = Field(None, description="Cap per month; a rolling month is 30 days.")

    def configured(self) -> list[tuple[Period, WindowCap]]:
        """The caps that are set, shortest period first."""
        out: list[tuple[Period, WindowCap]] = []
        for period in PERIODS:
            cap = getattr(self, period)
            if cap is not None:
                out.append((period, cap))
        return out


def _merchant_entries(values: list[str]) -> list[str]:
    for value in values:
        if not value.strip():
            raise _custom("merchant_entry", "an empty merchant entry matches nothing; give a merchant id or name")
    return [value.strip() for value in values]


class MerchantRules(_Section):
    """Which merchants may be paid, and how much each may receive in total."""

    allow: list[str] = Field(default_factory=list, description="If not empty, only these merchants may be paid. "
                                                               "Entries match the merchant id or name, ignoring case.")
    deny: list[str] = Field(default_factory=list, description="These merchants are never paid (deny wins over allow). "
                                                              "Entries match the merchant id or name, ignoring case.")
    caps: dict[str, PositiveAmount] = Field(default_factory=dict, description="Most that each merchant (key: id or "
                                            "name) may receive in total under this policy, in the policy currency.")

    @field_validator("allow", "deny")
    @classmethod
    def _entries(cls, values: list[str]) -> list[str]:
        return _merchant_entries(values)

    @field_validator("caps")
    @classmethod
    def _cap_keys(cls, caps: dict[str, Money]) -> dict[str, Money]:
        _merchant_entries(list(caps))
        return {key.strip(): value for key, value in caps.items()}

    def caps_for(self, merchant_id: str, merchant_name: str) -> list[tuple[str, Money]]:
        return [(key, cap) for key, cap in self.caps.items() if matches_merchant(key, merchant_id, merchant_name)]


class MccRules(_Section):
    """Which merchant category codes (MCC, ISO 18245) may be paid, and caps per code."""

    allow: list[str] = Field(default_factory=list, description="If not empty, only merchants with one of these MCCs "
                             "may be paid; entries are codes (\"7011\") or inclusive ranges (\"3000-3299\").")
    deny: list[str] = Field(default_factory=list, description="Merchants with these MCCs are never paid (deny wins).")
    caps: dict[str, PositiveAmount] = Field(default_factory=dict, description="Most that merchants of each MCC "
                                            "(key: a 4-digit code) may receive in total under this policy.")

    @field_validator("allow", "deny", mode="before")
    @classmethod
    def _codes(cls, values: object) -> object:
        if not isinstance(values, list):
            return values
        out = []
        for value in values:
            try:
                out.append(normalize_mcc(value))
            except ValueError as exc:
                raise _custom("mcc", str(exc)) from None
        return out

    @field_validator("caps", mode="before")
    @classmethod
    def _cap_codes(cls, caps: object) -> object:
        if not isinstance(caps, dict):
            return caps
        out: dict[str, object] = {}
        for key, value in caps.items():
            try:
                code = normalize_mcc(key)
            except ValueError as exc:
                raise _custom("mcc", str(exc)) from None
            if "-" in code:
                raise _custom("mcc", f"MCC cap key {key!r} is a range; a cap applies to one code such as \"7011\"")
            out[code] = value
        return out


class VelocityLimit(_Section):
    """At most `max_payments` payments in any rolling window of length `per`."""

    max_payments: int = Field(ge=1, le=100_000, description="Most payments allowed inside one window.")
    per: str = Field(description="Rolling window length: a number and a unit s, m, h, d or w, such as "
                                 "\"10m\", \"1h\" or \"1d\".")

    @field_validator("per")
    @classmethod
    def _duration(cls, value: str) -> str:
        try:
            parse_duration(value)
        except ValueError as exc:
            raise _custom("duration", str(exc)) from None
        return value.strip().lower()

    @property
    def window(self) -> timedelta:
        return parse_duration(self.per)


class ApprovalRules(_Section):
    """When a person must confirm before money moves (any matching rule asks)."""

    confirm_above: Amount | None = Field(None, description="Ask a person when a payment is above this amount (policy "
                                         "currency). \"0\" asks for every payment.")
    confirm_new_merchants: bool = Field(False, description="Ask a person for the first payment to a merchant never "
                                                           "paid before under this policy.")
    confirm_human_present: bool = Field(False, description="Ask the person to confirm every purchase made while "
                                                           "they are present (IMMEDIATE, human-present flows).")
    confirm_refunds: bool = Field(False, description="Ask a person before a refund is requested.")
    confirm_all: bool = Field(False, description="Ask a person for every payment.")


class NegotiationRules(_Section):
    """Limits on price negotiation with a seller agent."""

    max_rounds: int = Field(3, ge=0, le=50, description="Most offers/counter-offers the agent may make for one "
                                                        "purchase; 0 forbids negotiating.")
    max_offer: PositiveAmount | None = Field(None, description="Never offer more than this (policy currency). The "
                                             "agent never offers above the per-transaction max or the remaining "
                                             "budget either, whichever is lowest.")


_AGENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


def _printable(value: str | None, what: str, limit: int) -> str | None:
    """`value` if it is printable text of at most `limit` characters (it is shown in terminals, the console
    and notifications: an ESC or a bidi override in it would be a way to rewrite what a person reads)."""
    if value is None:
        return None
    bad = next((ch for ch in value if unicodedata.category(ch)[0] == "C"), None)
    if bad is not None:
        raise _custom("printable_text", f"the {what} contains the control or format character U+{ord(bad):04X}; "
                                        "expected printable text on one line")
    if len(value) > limit:
        raise _custom("printable_text", f"the {what} is {len(value)} characters long; at most {limit} are allowed")
    return value


def _agent_names(agents: dict[str, Any]) -> dict[str, Any]:
    for name in agents:
        if not isinstance(name, str) or not _AGENT_NAME.match(name):
            raise _custom("agent_name", f"agent name {name!r} is not usable; expected 1-64 letters, digits, '_', "
                                        "'.', ':' or '-' starting with a letter or digit (a '/' separates levels "
                                        "of a budget path, so it cannot be part of a name)")
    return agents


class AgentBudget(_Section):
    """A sub-budget inside its parent's (a crew member, a team member): every limit only tightens.

    Spending here counts toward every ancestor too, and a payment must fit every level. Leave a
    limit out to be bound by the parent's alone.
    """

    description: str | None = Field(None, description="What this agent's budget is for, in words.")
    total_budget: PositiveAmount | None = Field(None, description="Most this agent may spend in total; at most the "
                                                "parent's total. Left out: only the parent's room limits it.")
    per_transaction_max: PositiveAmount | None = Field(None, description="Most one payment of this agent may cost; "
                                                       "at most the parent's per-payment max.")
    windows: Windows = Field(default_factory=Windows, description="This agent's caps per hour / day / week / "
                             "month; each at most the parent's cap for the same period.")
    merchants: MerchantRules = Field(default_factory=MerchantRules, description="This agent's merchant lists and "
                                     "caps; an allow list must stay within the parent's.")
    mccs: MccRules = Field(default_factory=MccRules, description="This agent's MCC lists and caps; an allow list "
                           "must stay within the parent's.")
    velocity: VelocityLimit | None = Field(None, description="At most N payments per rolling window for this agent.")
    approval: ApprovalRules = Field(default_factory=ApprovalRules, description="When a person must confirm this "
                                    "agent's payments; the parent's rules apply too, and a rule here may only ask "
                                    "more often, never less.")
    agents: dict[str, AgentBudget] = Field(default_factory=dict, description="Sub-budgets inside this one.")

    @field_validator("agents")
    @classmethod
    def _names(cls, agents: dict[str, AgentBudget]) -> dict[str, AgentBudget]:
        return _agent_names(agents)


class BudgetPolicy(BaseModel):
    """A user's budget policy: limits, allowed merchants and when to ask a person.

    Every amount is in `currency`. Usage counts reserved and committed payments net of refunds.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True,
                              json_schema_extra={"title": "amp-tools budget policy"})

    schema_ref: str | None = Field(None, alias="$schema", description="Optional link to this JSON Schema, for editors.")
    name: str | None = Field(None, description="A short name for the policy, shown in approvals and reports.")
    description: str | None = Field(None, description="What this policy is for, in words.")
    version: str | None = Field(None, description="Your own version label for this policy (e.g. \"3\" or \"2025-06\").")

    currency: str = Field(description="The budget currency (ISO 4217, e.g. \"USD\", \"SGD\"). Every amount in "
                                      "this file is in it; foreign-currency payments are converted, rounding up.")
    total_budget: PositiveAmount = Field(description="Most that may be spent in total under this policy.")
    per_transaction_max: PositiveAmount | None = Field(None, description="Most that one payment may cost.")
    timezone: str = Field("UTC", description="IANA timezone for calendar windows, e.g. \"Asia/Singapore\".")
    windows: Windows = Field(default_factory=Windows, description="Caps per hour / day / week / month, "
                                                                  "each calendar or rolling.")
    merchants: MerchantRules = Field(default_factory=MerchantRules, description="Merchant allow/deny lists and "
                                                                                "per-merchant caps.")
    mccs: MccRules = Field(default_factory=MccRules, description="Merchant category code allow/deny lists and caps.")
    velocity: VelocityLimit | None = Field(None, description="At most N payments per rolling window.")
    expires_at: datetime | None = Field(None, description="After this instant every payment is refused. Give a UTC "
                                                          "offset, e.g. \"2025-12-31T23:59:59+08:00\".")
    approval: ApprovalRules = Field(default_factory=ApprovalRules, description="When a person must confirm.")
    negotiation: NegotiationRules = Field(default_factory=NegotiationRules, description="Price negotiation limits.")
    agents: dict[str, AgentBudget] = Field(default_factory=dict, description="Sub-budgets for the agents of a crew "
                                           "or team, by agent name: each spends inside this budget, with limits "
                                           "that may only tighten this policy's.")

    @model_validator(mode="wrap")
    @classmethod
    def _in_currency(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> BudgetPolicy:
        currency: str | None = None
        if isinstance(data, BudgetPolicy):
            currency = data.currency
        elif isinstance(data, dict):
            try:
                currency = normalize_currency(data.get("currency"))
            except MoneyError:
                currency = None
        token = _CURRENCY.set(currency)
        try:
            result: BudgetPolicy = handler(data)
        finally:
            _CURRENCY.reset(token)
        if result.agents:
            from amp_tools.policy.subbudgets import check_tree  # imports this module

            check_tree(result)
        return result

    @field_validator("agents")
    @classmethod
    def _agent_names(cls, agents: dict[str, AgentBudget]) -> dict[str, AgentBudget]:
        return _agent_names(agents)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return _printable(value, "policy name", 100)

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    @field_validator("currency", mode="before")
    @classmethod
    def _currency(cls, value: object) -> str:
        try:
            return normalize_currency(value)
        except MoneyError as exc:
            raise _custom("currency", exc.message) from None

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            resolve_timezone(value)
        except ValueError as exc:
            raise _custom("timezone", str(exc)) from None
        return value.strip()

    @field_validator("per_transaction_max")
    @classmethod
    def _per_tx(cls, value: Money | None, info: ValidationInfo) -> Money | None:
        total = info.data.get("total_budget")
        if value is not None and isinstance(total, Money) and value > total:
            raise _custom("per_transaction_max", f"per_transaction_max {value} is above total_budget {total}; "
                                                 "expected at most the total budget")
        return value

    @field_validator("expires_at")
    @classmethod
    def _expiry(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise _custom("expires_at", f"expires_at {value.isoformat()} has no UTC offset; expected an aware "
                                        "timestamp such as \"2025-12-31T23:59:59Z\" or \"...+08:00\"")
        return value.astimezone(UTC)

    # ------------------------------------------------------------------ helpers
    @property
    def tz(self) -> tzinfo:
        return resolve_timezone(self.timezone)

    def zero(self) -> Money:
        return Money.zero(self.currency)

    def label(self) -> str:
        return self.name or "budget policy"

    def canonical_json(self) -> str:
        """The policy as compact JSON with sorted keys: the input of `snapshot_hash`."""
        data = self.model_dump(mode="json", by_alias=True)
        if not data.get("agents"):
            data.pop("agents", None)  # a policy without sub-budgets keeps the hash it always had
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    def snapshot_hash(self) -> str:
        """sha256 (hex) of the canonical JSON; two equal policies have the same hash."""
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()

    def is_denied_merchant(self, merchant_id: str, merchant_name: str) -> str | None:
        for entry in self.merchants.deny:
            if matches_merchant(entry, merchant_id, merchant_name):
                return entry
        return None

    def is_allowed_merchant(self, merchant_id: str, merchant_name: str) -> bool:
        if not self.merchants.allow:
            return True
        return any(matches_merchant(e, merchant_id, merchant_name) for e in self.merchants.allow)
