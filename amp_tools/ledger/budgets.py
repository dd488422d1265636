"""Stored budgets: each budget's policy, versioned, in the ledger (schema version 6).

A budget is an object in the ledger, held by its owner. ``budgets`` (one row per budget id) carries
``policy_version``, the version in force; ``budget_policies`` keeps every version: the canonical JSON
of the parsed policy, its sha256, who wrote it, when, a note, the readable diff from the version before
and a ``signature`` column the owner's key fills (NULL while unsigned). The freeze is
`controls.budget_controls`; a budget's stored view joins the three.

Every version change takes the budget row lock (the ledger's lock order: budget row -> audit head),
refuses if the version moved since the caller read it (optimistic concurrency: two owners editing at
once never overwrite each other silently) and appends an audit record with who, when and the diff, in
the same transaction.

A budget row written by an earlier version (a budget seen only in entries, ``policy_version`` NULL) is
not a stored budget: `create_steps` *adopts* it, recording who brought the policy.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from amp_tools.errors import ConfigError, InvalidArguments, NotFound
from amp_tools.untrusted import one_line

from ._sql import Dialect, Q, Row, Steps, from_us, to_us
from .audit import append_steps

__all__ = ["BudgetExists", "PolicyVersion", "StaleVersion", "StoredBudget", "create_steps", "get_steps",
           "history_steps", "list_steps", "parse_stored_policy", "set_policy_steps", "validate_budget_id"]

_MAX_ID = 200
_MAX_NOTE = 500

_SELECT = ("SELECT b.budget_id, b.currency, b.parent, b.policy_version, p.policy, p.policy_hash, p.created_by, "
           "p.created_at, p.signature, c.frozen, c.reason, c.changed_by, c.changed_at, b.signature, "
           "f.created_by, f.created_at "
           "FROM budgets b JOIN budget_policies p ON p.budget_id = b.budget_id AND p.version = b.policy_version "
           "JOIN budget_policies f ON f.budget_id = b.budget_id AND f.version = 1 "
           "LEFT JOIN budget_controls c ON c.budget_id = b.budget_id")


class BudgetExists(InvalidArguments):
    """`create_budget` of an id that is already a stored budget."""

    def __init__(self, budget_id: str, version: int) -> None:
        super().__init__(f"budget {budget_id!r} already exists (policy version {version}); change its policy with "
                         f"`amp-tools budgets set-policy {budget_id} --policy FILE`", code="BUDGET_EXISTS",
                         details={"budget_id": budget_id, "version": version})


class StaleVersion(InvalidArguments):
    """`set_policy` with an `expected_version` that is no longer the stored one."""

    def __init__(self, budget_id: str, expected: int, current: int) -> None:
        super().__init__(f"budget {budget_id!r} is at policy version {current}, not {expected}: someone changed it "
                         "meanwhile; read it again, review the change and retry", code="STALE_POLICY_VERSION",
                         details={"budget_id": budget_id, "expected": expected, "current": current})


def parse_stored_policy(text: str, source: str) -> Any:
    """Parse a stored canonical policy (imported lazily: the ledger does not depend on the policy module)."""
    loader: Any = importlib.import_module("amp_tools.policy.loader")
    return loader.parse_policy(json.loads(text), source=source)


def _diff(old_text: str | None, new_text: str) -> list[str]:
    module: Any = importlib.import_module("amp_tools.policy.diff")
    lines: list[str] = module.diff_policies(old_text, new_text)
    return lines


@dataclass(frozen=True)
class PolicyVersion:
    """One stored version of a budget's policy."""

    budget_id: str
    version: int
    policy_json: str
    policy_hash: str
    created_at: datetime
    created_by: str
    note: str
    signature: str | None
    diff: tuple[str, ...]

    @property
    def policy(self) -> Any:
        return parse_stored_policy(self.policy_json, f"budget {self.budget_id!r} policy version {self.version}")

    def to_public(self) -> dict[str, Any]:
        return {"budget_id": self.budget_id, "version": self.version, "policy_hash": self.policy_hash,
                "created_at": self.created_at.isoformat(), "created_by": self.created_by, "note": self.note,
                "signed": self.signature is not None, "diff": list(self.diff)}


@dataclass(frozen=True)
class StoredBudget:
    """A budget as its owner stored it: the policy in force (parsed), its version, its parent and freeze."""

    budget_id: str
    currency: str
    parent: str | None
    policy_version: int
    policy: Any
    policy_json: str
    policy_hash: str
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime
    frozen: bool
    frozen_reason: str
    frozen_by: str | None
    frozen_at: datetime | None
    #: The owner's signature over the version in force (NULL until the owner's key signs it).
    signature: str | None
    #: The owner's signature over the freeze control (NULL until signed).
    control_signature: str | None = None

    @property
    def signed(self) -> bool:
        return self.signature is not None

    def to_public(self) -> dict[str, Any]:
        return {"budget_id": self.budget_id, "currency": self.currency, "parent": self.parent,
                "policy_version": self.policy_version, "policy_hash": self.policy_hash,
                "created_by": self.created_by, "created_at": self.created_at.isoformat(),
                "updated_by": self.updated_by, "updated_at": self.updated_at.isoformat(),
                "frozen": self.frozen, "frozen_reason": self.frozen_reason if self.frozen else None,
                "signed": self.signed, "policy": json.loads(self.policy_json)}


def _budget(row: Row) -> StoredBudget:
    budget_id = str(row[0])
    text = str(row[4])
    frozen = bool(row[9]) if row[9] is not None else False
    return StoredBudget(
        budget_id=budget_id, currency=str(row[1]), parent=None if row[2] is None else str(row[2]),
        policy_version=int(row[3]),
        policy=parse_stored_policy(text, f"budget {budget_id!r} policy version {int(row[3])}"),
        policy_json=text, policy_hash=str(row[5]), updated_by=str(row[6]), updated_at=from_us(int(row[7])),
        signature=None if row[8] is None else str(row[8]), frozen=frozen,
        frozen_reason=str(row[10]) if frozen and row[10] is not None else "",
        frozen_by=None if row[11] is None else str(row[11]),
        frozen_at=None if row[12] is None else from_us(int(row[12])),
        control_signature=None if row[13] is None else str(row[13]),
        created_by=str(row[14]), created_at=from_us(int(row[15])))


def _version(row: Row) -> PolicyVersion:
    diff = json.loads(str(row[8])) if row[8] else []
    return PolicyVersion(budget_id=str(row[0]), version=int(row[1]), policy_json=str(row[2]),
                         policy_hash=str(row[3]), created_at=from_us(int(row[4])), created_by=str(row[5]),
                         note=str(row[6] or ""), signature=None if row[7] is None else str(row[7]),
                         diff=tuple(str(line) for line in diff))


def validate_budget_id(budget_id: object) -> str:
    """A budget id: one line of printable text, at most 200 characters, no surrounding spaces."""
    text = one_line("budget_id", budget_id, _MAX_ID, required=True)
    if text != budget_id:
        raise InvalidArguments(f"budget_id {budget_id!r} has surrounding spaces; expected {text!r}")
    return text


def _canonical(policy: Any) -> tuple[str, str, str]:
    """(canonical text, sha256, currency) of a parsed policy."""
    canonical = getattr(policy, "canonical_json", None)
    if not callable(canonical):
        raise InvalidArguments(f"a stored budget needs a parsed policy (BudgetPolicy), not {type(policy).__name__}")
    text = str(canonical())
    return text, str(policy.snapshot_hash()), str(policy.currency)


def get_steps(budget_id: str) -> Steps[StoredBudget | None]:
    rows = yield Q(_SELECT + " WHERE b.budget_id = ?", (budget_id,))
    return _budget(rows[0]) if rows else None


def list_steps() -> Steps[list[StoredBudget]]:
    rows = yield Q(_SELECT + " ORDER BY b.budget_id")
    return [_budget(row) for row in rows]


def history_steps(budget_id: str) -> Steps[list[PolicyVersion]]:
    rows = yield Q("SELECT budget_id, version, policy, policy_hash, created_at, created_by, note, signature, diff "
                   "FROM budget_policies WHERE budget_id = ? ORDER BY version", (budget_id,))
    return [_version(row) for row in rows]


def _insert_version(budget_id: str, version: int, text: str, digest: str, by: str, note: str, diff: list[str],
                    now_us: int) -> Steps[None]:
    yield Q("INSERT INTO budget_policies (budget_id, version, policy, policy_hash, created_at, created_by, note, "
            "signature, diff) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)",
            (budget_id, version, text, digest, now_us, by, note, json.dumps(diff, ensure_ascii=False)))
    yield Q("UPDATE budgets SET policy_version = ?, policy_hash = ? WHERE budget_id = ?", (version, digest, budget_id))


def create_steps(dialect: Dialect, budget_id: str, policy: Any, *, by: str, parent: str | None, note: str,
                 now: datetime) -> Steps[StoredBudget]:
    """Store a new budget at policy version 1 (or adopt a budget row that has entries but no policy)."""
    budget_id = validate_budget_id(budget_id)
    who = one_line("by", by, _MAX_ID, required=True)
    note = one_line("note", note, _MAX_NOTE, required=False)
    if parent is not None:
        parent = validate_budget_id(parent)
        if parent == budget_id:
            raise InvalidArguments(f"budget {budget_id!r} cannot be its own parent")
    text, digest, currency = _canonical(policy)
    now_us = to_us(now)
    if parent is not None:
        # Parent first: the ledger locks root before leaf.
        rows = yield Q(f"SELECT currency, policy_version FROM budgets WHERE budget_id = ?{dialect.for_update}",
                       (parent,))
        if not rows or rows[0][1] is None:
            raise NotFound(f"parent budget {parent!r} is not a stored budget; create it first")
        if str(rows[0][0]) != currency:
            raise ConfigError(f"budget {budget_id!r} in {currency} cannot sit under {parent!r}, kept in {rows[0][0]}")
    # Insert, or else lock the existing row (a budget seen in entries, or one created meanwhile).
    inserted = yield Q("INSERT INTO budgets (budget_id, currency, used_minor, used_count, committed_count, "
                       "created_at, parent) VALUES (?, ?, 0, 0, 0, ?, ?) ON CONFLICT (budget_id) DO NOTHING "
                       "RETURNING budget_id", (budget_id, currency, now_us, parent))
    adopted = False
    if not inserted:
        rows = yield Q(f"SELECT currency, policy_version FROM budgets WHERE budget_id = ?{dialect.for_update}",
                       (budget_id,))
        stored_currency, version = rows[0]
        if version is not None:
            raise BudgetExists(budget_id, int(version))
        if str(stored_currency) != currency:
            raise ConfigError(f"budget {budget_id!r} is kept in {stored_currency} but the policy currency is "
                              f"{currency}; use another budget id for a policy in another currency")
        adopted = True
    if adopted and not note:
        note = f"adopted by {who} from its policy"
    if parent is not None:
        yield Q("UPDATE budgets SET parent = ? WHERE budget_id = ?", (parent, budget_id))
    diff = _diff(None, text)
    yield from _insert_version(budget_id, 1, text, digest, who, note, diff, now_us)
    yield from append_steps(dialect, "budget_adopt" if adopted else "budget_create", {
        "budget_id": budget_id, "version": 1, "policy_hash": digest, "currency": currency, "parent": parent,
        "by": who, "note": note, "diff": diff}, budget_id=budget_id, at=now)
    stored = yield from get_steps(budget_id)
    assert stored is not None
    return stored


def set_policy_steps(dialect: Dialect, budget_id: str, policy: Any, *, by: str, expected_version: int, note: str,
                     now: datetime) -> Steps[StoredBudget]:
    """Store a new version of the budget's policy if the stored version is still `expected_version`.

    Setting the policy the budget already has changes nothing (no version, no audit record)."""
    budget_id = validate_budget_id(budget_id)
    who = one_line("by", by, _MAX_ID, required=True)
    note = one_line("note", note, _MAX_NOTE, required=False)
    if isinstance(expected_version, bool) or not isinstance(expected_version, int) or expected_version < 1:
        raise InvalidArguments(f"expected_version {expected_version!r} must be the stored version you read (1, 2, ...)")
    text, digest, currency = _canonical(policy)
    rows = yield Q("SELECT b.currency, b.policy_version, p.policy, p.policy_hash FROM budgets b LEFT JOIN "
                   "budget_policies p ON p.budget_id = b.budget_id AND p.version = b.policy_version "
                   "WHERE b.budget_id = ?" + (" FOR UPDATE OF b" if dialect.name == "postgresql" else ""),
                   (budget_id,))
    if not rows or rows[0][1] is None:
        raise NotFound(f"budget {budget_id!r} is not a stored budget; create it with "
                       f"`amp-tools budgets create {budget_id} --policy FILE`")
    stored_currency, version, old_text, old_hash = str(rows[0][0]), int(rows[0][1]), str(rows[0][2]), str(rows[0][3])
    if version != expected_version:
        raise StaleVersion(budget_id, expected_version, version)
    if stored_currency != currency:
        raise ConfigError(f"budget {budget_id!r} is kept in {stored_currency}; a policy in {currency} cannot govern "
                          "it (create another budget for another currency)")
    if digest != old_hash:
        diff = _diff(old_text, text)
        now_us = to_us(now)
        yield from _insert_version(budget_id, version + 1, text, digest, who, note, diff, now_us)
        yield from append_steps(dialect, "budget_policy", {
            "budget_id": budget_id, "version": version + 1, "previous_version": version, "policy_hash": digest,
            "previous_hash": old_hash, "by": who, "note": note, "diff": diff}, budget_id=budget_id, at=now)
    stored = yield from get_steps(budget_id)
    assert stored is not None
    return stored
