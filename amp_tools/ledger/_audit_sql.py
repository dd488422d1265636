"""The audit chain's append in PL/pgSQL: the one SQL text of the rule `audit.write_record_steps` and
`audit._text_hash` state, which the ledger's server functions (`_reserve_sql`, `_commit_sql`) include.

Each piece names the budget whose chain it appends to as an SQL expression. The function around it
declares ``v_n bigint``, ``v_prev text``, ``v_seq bigint``, ``v_payload text`` and ``v_hash text``, and
its argument ``p`` carries ``genesis``, ``ts`` and ``body_post`` (the record's text after its seq).
`audit verify` (Python) checks every record these write.
"""

from __future__ import annotations

__all__ = ["append_record", "lock_head"]


def lock_head(budget: str) -> str:
    """Create or lock the budget's chain head; ``v_n`` becomes the new record's position, ``v_prev`` the
    hash it links to and ``v_seq`` its global sequence number."""
    return f"""    INSERT INTO audit_heads (budget_id, n, seq, hash) VALUES ({budget}, 0, 0, p->>'genesis')
    ON CONFLICT (budget_id) DO UPDATE SET n = audit_heads.n
    RETURNING audit_heads.n, audit_heads.hash, nextval('audit_seq_gen') INTO v_n, v_prev, v_seq;
    v_n := v_n + 1;"""


def append_record(budget: str, kind: str) -> str:
    """Hash ``v_payload`` (canonical JSON) into the chain after ``v_prev``, write the record and move the head."""
    if not kind.isidentifier():
        raise ValueError(f"audit kind {kind!r} must be a plain word such as 'commit'")
    return f"""    v_hash := encode(sha256(convert_to(v_prev || '{{"budget_id":' || to_json({budget})::text
                                       || ',"kind":"{kind}","n":' || v_n || ',"payload":' || v_payload
                                       || ',"seq":' || v_seq || (p->>'body_post'), 'UTF8')), 'hex');
    INSERT INTO audit (seq, n, ts, kind, budget_id, payload, prev_hash, hash)
    VALUES (v_seq, v_n, p->>'ts', '{kind}', {budget}, v_payload, v_prev, v_hash);
    UPDATE audit_heads SET n = v_n, seq = v_seq, hash = v_hash WHERE budget_id = {budget};"""
