"""The PostgreSQL functions ``amp_commit`` and ``amp_transition``, installed by schema version 10.

Owns the function's text only; `_commit_fn` builds its argument and reads its answer. In one call,
under READ COMMITTED: lock the root budget of the entry, then the entry (the one lock order), read
whether another entry holds the merchant transaction id, and answer the entry as locked, with
nothing written, unless it is a reserved payment in an allowed phase that may take this id and
amount (Python then raises, or hands back the committed entry, exactly as `_ops.commit_steps` does).
Otherwise lock the budget's audit head and move every level's aggregates, append the audit record
(its payload a canonical-JSON template from Python whose slots are the locked entry's own values,
hashed over exactly the text `audit._text_hash` hashes) and update the entry; answer the updated row.
``amp_transition`` moves a reserved entry from an allowed phase to the next the same way (the locks, the
record, the entry), and answers the entry as locked, with nothing written, when it may not move.
"""

from __future__ import annotations

from ._audit_sql import append_record, lock_head
from .records import ENTRY_COLUMNS

__all__ = ["COMMIT_FUNCTION", "TRANSITION_FUNCTION"]

_ROW = "ARRAY[" + ", ".join(f"e.{name}::text" for name in ENTRY_COLUMNS.split(", ")) + "]"
_MONEY = """'{"currency":' || to_json(CUR)::text || ',"minor":' || MINOR || '}'"""


#: The start of both functions: the durability asked for, then the one lock order (the entry's root budget,
#: then the entry); an entry that does not exist is answered at once.
_LOCK_ENTRY = """    IF NOT durable THEN
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;
    PERFORM 1 FROM budgets WHERE budget_id = (SELECT COALESCE(x.root_id, x.budget_id) FROM entries x WHERE x.id = v_id)
    FOR UPDATE;
    SELECT * INTO e FROM entries x WHERE x.id = v_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN '{"s":"missing"}';
    END IF;"""


def _money(cur: str, minor: str) -> str:
    """SQL for a `Money` as canonical JSON (`audit.canonical_json` writes ``{"currency":..,"minor":..}``)."""
    return _MONEY.replace("CUR", cur).replace("MINOR", minor)

COMMIT_FUNCTION = """CREATE OR REPLACE FUNCTION amp_commit(arg text, durable boolean, retried boolean) RETURNS text
LANGUAGE plpgsql AS $fn$
DECLARE
    p jsonb := arg::jsonb;
    v_id bigint := (p->>'id')::bigint;
    v_ref text := p->>'external_ref';
    v_debited bigint := (p->>'debited')::bigint;
    v_allowed text[] := CASE WHEN p->'allowed' IS NULL OR jsonb_typeof(p->'allowed') = 'null' THEN NULL
                             ELSE ARRAY(SELECT jsonb_array_elements_text(p->'allowed')) END;
    e entries%ROWTYPE;
    v_row text[];
    v_dup bigint;
    v_delta bigint := 0;
    v_levels text[];
    v_level text;
    v_n bigint;
    v_prev text;
    v_seq bigint;
    v_hour bigint;
    v_day bigint;
    v_template jsonb;
    v_payload text;
    v_slot text;
    v_hash text;
    i int;
BEGIN
LOCK_ENTRY
    v_row := ROW_PLACEHOLDER;
    IF v_ref IS NOT NULL THEN
        SELECT x.id INTO v_dup FROM entries x WHERE x.merchant_id = e.merchant_id AND x.external_ref = v_ref
        AND x.status = 'committed' AND x.action = 'pay' AND x.dup_of IS NULL AND x.id <> v_id LIMIT 1;
    END IF;
    IF e.status <> 'reserved' OR (v_allowed IS NOT NULL AND NOT COALESCE(e.phase, 'reserved') = ANY(v_allowed))
            OR (e.action = 'pay' AND v_dup IS NOT NULL)
            OR (v_debited IS NOT NULL AND e.action = 'pay' AND e.budget_currency <> p->>'debited_currency') THEN
        RETURN jsonb_build_object('s', 'row', 'row', to_jsonb(v_row), 'dup', v_dup)::text;
    END IF;
    IF v_debited IS NOT NULL AND e.action = 'pay' THEN
        v_delta := v_debited - e.budget_minor;
        v_template := CASE WHEN v_delta > 0 THEN p->'payload_over' ELSE p->'payload' END;
    ELSE
        v_template := p->'payload_plain';
    END IF;
LOCK_HEAD
    IF e.action = 'pay' THEN
        v_levels := ARRAY(SELECT jsonb_array_elements_text(COALESCE(e.parents, '[]')::jsonb)) || e.budget_id;
        v_hour := e.created_at - ((e.created_at % 3600000000) + 3600000000) % 3600000000;
        v_day := e.created_at - ((e.created_at % 86400000000) + 86400000000) % 86400000000;
        FOREACH v_level IN ARRAY v_levels LOOP
            UPDATE budgets SET used_minor = used_minor + v_delta, committed_count = committed_count + 1
            WHERE budget_id = v_level;
            INSERT INTO usage_totals AS t (budget_id, scope, key, label, used_minor, used_count, committed_count)
            SELECT v_level, s.scope, s.key, s.label, v_delta, 0, 1
            FROM (VALUES ('merchant', e.merchant_id, e.merchant_name), ('mcc', e.mcc, NULL)) AS s(scope, key, label)
            WHERE s.key IS NOT NULL
            ON CONFLICT (budget_id, scope, key) DO UPDATE SET used_minor = t.used_minor + excluded.used_minor,
                committed_count = t.committed_count + excluded.committed_count;
            IF v_delta <> 0 THEN
                INSERT INTO usage_buckets AS u (budget_id, scope, key, width, start, used_minor, used_count)
                SELECT v_level, s.scope, s.key, w.width, w.start, v_delta, 0
                FROM (VALUES ('all', ''), ('merchant', e.merchant_id), ('mcc', e.mcc)) AS s(scope, key)
                CROSS JOIN (VALUES (3600000000, v_hour), (86400000000, v_day)) AS w(width, start)
                WHERE s.key IS NOT NULL
                ON CONFLICT (budget_id, scope, key, width, start) DO UPDATE
                SET used_minor = u.used_minor + excluded.used_minor;
            END IF;
        END LOOP;
    END IF;
    -- The payload from its template: text parts with one of the locked entry's values between each two.
    v_payload := v_template->'parts'->>0;
    FOR i IN 0..jsonb_array_length(v_template->'slots') - 1 LOOP
        v_slot := v_template->'slots'->>i;
        v_payload := v_payload || CASE v_slot
            WHEN 'key' THEN to_json(e.idempotency_key)::text
            WHEN 'amount' THEN AMOUNT_PLACEHOLDER
            WHEN 'budget' THEN BUDGET_PLACEHOLDER
            ELSE OVER_PLACEHOLDER END || (v_template->'parts'->>(i + 1));
    END LOOP;
APPEND_RECORD
    UPDATE entries x SET status = 'committed', phase = NULL, owner = NULL, lease_until = NULL, resume = NULL,
        budget_minor = CASE WHEN v_debited IS NOT NULL AND x.action = 'pay' THEN v_debited ELSE x.budget_minor END,
        counted_minor = x.counted_minor + v_delta, external_ref = v_ref, outcome = p->>'outcome',
        updated_at = (p->>'now')::bigint, last_audit_seq = v_seq
    WHERE x.id = v_id RETURNING * INTO e;
    RETURN jsonb_build_object('s', 'ok', 'row', to_jsonb(ROW_PLACEHOLDER))::text;
END
$fn$""".replace("ROW_PLACEHOLDER", _ROW).replace("LOCK_ENTRY", _LOCK_ENTRY).replace(
    "LOCK_HEAD", lock_head("e.budget_id")).replace(
    "APPEND_RECORD", append_record("e.budget_id", "commit")).replace(
    "AMOUNT_PLACEHOLDER", _money("e.currency", "e.amount_minor")).replace(
    "BUDGET_PLACEHOLDER", _money("e.budget_currency", "e.budget_minor")).replace(
    "OVER_PLACEHOLDER", _money("e.budget_currency", "v_delta"))


TRANSITION_FUNCTION = """CREATE OR REPLACE FUNCTION amp_transition(arg text, durable boolean, retried boolean)
RETURNS text LANGUAGE plpgsql AS $fn$
DECLARE
    p jsonb := arg::jsonb;
    v_id bigint := (p->>'id')::bigint;
    v_to text := p->>'to';
    v_owner text := p->>'owner';
    v_lease bigint := (p->>'lease_until')::bigint;
    v_now bigint := (p->>'now')::bigint;
    e entries%ROWTYPE;
    v_n bigint;
    v_prev text;
    v_seq bigint;
    v_payload text;
    v_slot text;
    v_hash text;
    i int;
BEGIN
LOCK_ENTRY
    IF retried AND e.status = 'reserved' AND e.phase IS NOT DISTINCT FROM v_to AND e.owner IS NOT DISTINCT FROM v_owner
            AND e.updated_at = v_now THEN
        -- Sent again after a cut-off: the first sending made this very move.
        RETURN jsonb_build_object('s', 'ok', 'row', to_jsonb(ROW_PLACEHOLDER))::text;
    END IF;
    IF e.status <> 'reserved'
            OR NOT COALESCE(e.phase, 'reserved') = ANY(ARRAY(SELECT jsonb_array_elements_text(p->'allowed'))) THEN
        RETURN jsonb_build_object('s', 'row', 'row', to_jsonb(ROW_PLACEHOLDER))::text;
    END IF;
LOCK_HEAD
    v_payload := p->'payload'->'parts'->>0;
    FOR i IN 0..jsonb_array_length(p->'payload'->'slots') - 1 LOOP
        v_slot := p->'payload'->'slots'->>i;
        v_payload := v_payload || CASE v_slot
            WHEN 'key' THEN to_json(e.idempotency_key)::text
            ELSE to_json(COALESCE(e.phase, 'reserved'))::text END || (p->'payload'->'parts'->>(i + 1));
    END LOOP;
APPEND_RECORD
    UPDATE entries x SET phase = v_to, owner = v_owner, lease_until = v_lease, updated_at = v_now,
        resume = CASE WHEN (p->>'keep_resume')::boolean THEN x.resume ELSE p->>'resume' END, last_audit_seq = v_seq
    WHERE x.id = v_id RETURNING * INTO e;
    RETURN jsonb_build_object('s', 'ok', 'row', to_jsonb(ROW_PLACEHOLDER))::text;
END
$fn$""".replace("ROW_PLACEHOLDER", _ROW).replace("LOCK_ENTRY", _LOCK_ENTRY).replace(
    "LOCK_HEAD", lock_head("e.budget_id")).replace(
    "APPEND_RECORD", append_record("e.budget_id", "transition"))
