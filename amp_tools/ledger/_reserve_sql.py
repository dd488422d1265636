"""The PostgreSQL check-and-reserve function ``amp_reserve``, installed by schema version 10.

Owns the function's text only; `_reserve_fn` builds its one argument (a JSON plan) from the policy
model and reads its one answer (a JSON object); its other two arguments are the backend's (`Q.alone`:
whether the commit waits for the WAL flush, and whether this is a second sending after a cut-off,
when a live entry this very call wrote is answered as its own). The function holds no rule of its own: every
limit arrives as a bound (``figure <= bound``) computed by `amp_tools.policy.decide.caps`, the
approval reasons and the audit payload arrive as canonical-JSON templates with slots for the
values only the server knows, so the rules stay written once, in Python.

In one call, under READ COMMITTED (each statement of a volatile function sees everything committed
before it started): create-or-lock every level's budget row root to leaf, check the stored
currency, the key's latest attempt, the stored policy hash and every level's freeze (answering
early, with nothing written but a budget row it created, which it rolls back by raising ``P0001``
with the answer as the detail), read every figure, compare it with its
bounds (a refusal answers the figures: Python's `decide` raises the refusal from them), then draw
the entry id, lock the leaf budget's audit head, and write the entry, every level's aggregates and
the audit record, whose hash is the SHA-256 of exactly the text `audit._text_hash` hashes.
"""

from __future__ import annotations

from ._audit_sql import append_record, lock_head
from .records import ENTRY_COLUMNS

__all__ = ["RESERVE_FUNCTION"]

_ENTRY_TEXT = "ARRAY[" + ", ".join(f"e.{name}::text" for name in ENTRY_COLUMNS.split(", ")) + "]"

RESERVE_FUNCTION = """CREATE OR REPLACE FUNCTION amp_reserve(arg text, durable boolean, retried boolean) RETURNS text
LANGUAGE plpgsql AS $fn$
DECLARE
    p jsonb := arg::jsonb;
    v_ids text[] := ARRAY(SELECT jsonb_array_elements_text(p->'ids'));
    v_nl int := cardinality(v_ids);
    v_leaf text := v_ids[v_nl];
    v_cur text := p->>'currency';
    v_now bigint := (p->>'now')::bigint;
    v_merchant text := p->>'merchant_id';
    v_mcc text := p->>'mcc';
    v_counted bigint := (p->>'counted')::bigint;
    v_got_cur text[] := '{}';
    v_got_hash text[] := '{}';
    v_fm bigint[] := '{}';
    v_fc bigint[] := '{}';
    v_seen boolean[] := '{}';
    v_cov text[];
    v_fq jsonb;
    v_scope text;
    v_key text;
    v_lvl int;
    v_since bigint;
    v_h0 bigint;
    v_d0 bigint;
    v_m bigint;
    v_c bigint;
    v_m2 bigint;
    v_c2 bigint;
    v_b jsonb;
    v_attempt int := 1;
    v_id bigint;
    v_n bigint;
    v_prev text;
    v_seq bigint;
    v_mask int := 0;
    v_left bigint;
    v_dec text;
    v_payload text;
    v_hash text;
    v_slot text;
    v_parts jsonb;
    v_slots jsonb;
    v_row text[];
    v_status text;
    v_same boolean;
    v_created boolean := false;
    v_answer jsonb;
    r record;
    i int;
    l int;
BEGIN
    IF NOT durable THEN  -- this transaction's COMMIT returns without waiting for the WAL flush
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;
    <<checks>>
    BEGIN
    -- Create-or-lock every level's budget row, root to leaf (the one lock order).
    FOR l IN 1..v_nl LOOP
        IF (p->>'tree')::boolean THEN
            INSERT INTO budgets (budget_id, currency, used_minor, used_count, committed_count, created_at, parent)
            VALUES (v_ids[l], v_cur, 0, 0, 0, v_now, p->'parents'->>(l - 1))
            ON CONFLICT (budget_id) DO UPDATE SET parent = excluded.parent
            RETURNING currency, policy_hash, xmax = 0 AS created INTO r;
        ELSE
            INSERT INTO budgets (budget_id, currency, used_minor, used_count, committed_count, created_at)
            VALUES (v_ids[l], v_cur, 0, 0, 0, v_now)
            ON CONFLICT (budget_id) DO UPDATE SET currency = budgets.currency
            RETURNING currency, policy_hash, xmax = 0 AS created INTO r;
        END IF;
        v_created := v_created OR r.created;
        v_got_cur[l] := r.currency;
        v_got_hash[l] := r.policy_hash;
    END LOOP;
    FOR l IN 1..v_nl LOOP
        IF v_got_cur[l] <> v_cur THEN
            v_answer := jsonb_build_object('s', 'currency', 'level', l - 1, 'stored', v_got_cur[l]);
            EXIT checks;
        END IF;
    END LOOP;
    -- The key's latest attempt: a live one (or another payment's) is answered as it is.
    LATEST_ATTEMPT_QUERY
    IF FOUND THEN
        IF retried AND v_status <> 'released' AND v_same AND v_row[24] = p->'entry'->>'created_at'
                AND v_row[5] = p->'entry'->>'run_id' AND v_row[29] IS NOT DISTINCT FROM p->'entry'->>'owner' THEN
            -- Sent again after a cut-off: this is the reservation the first call committed.
            v_answer := jsonb_build_object('s', 'mine', 'row', to_jsonb(v_row));
            EXIT checks;
        END IF;
        IF v_status <> 'released' OR NOT v_same THEN
            v_answer := jsonb_build_object('s', 'existing', 'row', to_jsonb(v_row));
            EXIT checks;
        END IF;
        v_attempt := v_attempt + 1;
    ELSE
        v_attempt := 1;
    END IF;
    FOR l IN 1..v_nl LOOP
        IF p->'hashes'->>(l - 1) IS NOT NULL AND v_got_hash[l] IS NOT NULL
                AND v_got_hash[l] <> p->'hashes'->>(l - 1) THEN
            v_answer := jsonb_build_object('s', 'policy', 'level', l - 1, 'stored', v_got_hash[l]);
            EXIT checks;
        END IF;
    END LOOP;
    FOR l IN 1..v_nl LOOP
        SELECT c.reason, c.changed_by INTO r FROM budget_controls c WHERE c.budget_id = v_ids[l] AND c.frozen = 1;
        IF FOUND THEN
            v_answer := jsonb_build_object('s', 'frozen', 'level', l - 1, 'reason', r.reason, 'by', r.changed_by);
            EXIT checks;
        END IF;
    END LOOP;
    -- Every figure: [level, scope, key, since or null (all time), first whole hour, first whole day].
    FOR i IN 0..jsonb_array_length(p->'figures') - 1 LOOP
        v_fq := p->'figures'->i;
        v_lvl := (v_fq->>0)::int + 1;
        v_scope := v_fq->>1;
        v_key := v_fq->>2;
        v_m := NULL;
        v_c := NULL;
        IF v_fq->>3 IS NULL THEN
            IF v_scope = 'all' THEN
                SELECT b.used_minor, b.used_count INTO v_m, v_c FROM budgets b WHERE b.budget_id = v_ids[v_lvl];
            ELSE
                SELECT t.used_minor, t.used_count INTO v_m, v_c FROM usage_totals t
                WHERE t.budget_id = v_ids[v_lvl] AND t.scope = v_scope AND t.key = v_key;
            END IF;
        ELSE
            v_since := (v_fq->>3)::bigint;
            v_h0 := (v_fq->>4)::bigint;
            v_d0 := (v_fq->>5)::bigint;
            v_cov := ARRAY(SELECT jsonb_array_elements_text(p->'covers'->(v_lvl - 1)));
            IF v_scope = 'all' THEN
                SELECT COALESCE(SUM(e.counted_minor), 0), COUNT(*) INTO v_m, v_c FROM entries e
                WHERE e.budget_id = ANY(v_cov) AND e.counts = 1 AND e.created_at >= v_since AND e.created_at < v_h0;
            ELSIF v_scope = 'merchant' THEN
                SELECT COALESCE(SUM(e.counted_minor), 0), COUNT(*) INTO v_m, v_c FROM entries e
                WHERE e.budget_id = ANY(v_cov) AND e.counts = 1 AND e.merchant_id = v_key
                AND e.created_at >= v_since AND e.created_at < v_h0;
            ELSE
                SELECT COALESCE(SUM(e.counted_minor), 0), COUNT(*) INTO v_m, v_c FROM entries e
                WHERE e.budget_id = ANY(v_cov) AND e.counts = 1 AND e.mcc = v_key
                AND e.created_at >= v_since AND e.created_at < v_h0;
            END IF;
            SELECT COALESCE(SUM(u.used_minor), 0), COALESCE(SUM(u.used_count), 0) INTO v_m2, v_c2 FROM usage_buckets u
            WHERE u.budget_id = v_ids[v_lvl] AND u.scope = v_scope AND u.key = COALESCE(v_key, '')
            AND ((u.width = 3600000000 AND u.start >= v_h0 AND u.start < v_d0)
                 OR (u.width = 86400000000 AND u.start >= v_d0));
            v_m := v_m + v_m2;
            v_c := v_c + v_c2;
        END IF;
        v_fm[i + 1] := COALESCE(v_m, 0);
        v_fc[i + 1] := COALESCE(v_c, 0);
    END LOOP;
    FOR l IN 1..v_nl LOOP
        SELECT t.committed_count INTO v_c FROM usage_totals t
        WHERE t.budget_id = v_ids[l] AND t.scope = 'merchant' AND t.key = v_merchant;
        v_seen[l] := FOUND AND v_c > 0;
    END LOOP;
    -- Every bound: [figure, 'm' (amount) or 'c' (count), the most that figure may be].
    FOR i IN 0..jsonb_array_length(p->'bounds') - 1 LOOP
        v_b := p->'bounds'->i;
        IF (CASE WHEN v_b->>1 = 'c' THEN v_fc[(v_b->>0)::int + 1] ELSE v_fm[(v_b->>0)::int + 1] END)
                > (v_b->>2)::bigint THEN
            v_answer := jsonb_build_object('s', 'refused', 'm', v_fm, 'c', v_fc, 'seen', v_seen);
            EXIT checks;
        END IF;
    END LOOP;
    END checks;
    IF v_answer IS NOT NULL THEN
        -- Nothing was written but the budget rows' locks; a budget row this call created is rolled
        -- back by raising (the caller reads the answer from the error's detail).
        IF v_created THEN
            RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'amp_reserve', DETAIL = v_answer::text;
        END IF;
        RETURN v_answer::text;
    END IF;
    -- Allowed: the reasons (chosen by which candidate levels have not seen the merchant) and the room left.
    FOR i IN 0..jsonb_array_length(p->'reason_levels') - 1 LOOP
        IF NOT v_seen[(p->'reason_levels'->>i)::int + 1] THEN
            v_mask := v_mask + (1 << i);
        END IF;
    END LOOP;
    FOR l IN 1..v_nl LOOP
        v_m := (p->'left'->(l - 1)->>1)::bigint - v_fm[(p->'left'->(l - 1)->>0)::int + 1];
        IF v_left IS NULL OR v_m < v_left THEN
            v_left := v_m;
        END IF;
    END LOOP;
    v_id := nextval('entries_id_seq');
LOCK_HEAD
    -- The decision, then the payload, from their templates: text parts with a value between each two.
    FOR v_parts, v_slots IN SELECT x.t->'parts', x.t->'slots' FROM (VALUES (1, p->'decision'), (2, p->'payload'))
                                AS x(k, t) ORDER BY x.k LOOP
        v_payload := v_parts->>0;
        FOR i IN 0..jsonb_array_length(v_slots) - 1 LOOP
            v_slot := v_slots->>i;
            v_payload := v_payload || CASE v_slot
                WHEN 'attempt' THEN v_attempt::text
                WHEN 'entry_id' THEN v_id::text
                WHEN 'decision' THEN v_dec
                WHEN 'reasons' THEN p->'reasons'->>v_mask
                WHEN 'left' THEN v_left::text
                ELSE '{"count":' || v_fc[substr(v_slot, 2)::int + 1] || ',"minor":' || v_fm[substr(v_slot, 2)::int + 1]
                     || '}' END || (v_parts->>(i + 1));
        END LOOP;
        IF v_dec IS NULL THEN
            v_dec := v_payload;
        END IF;
    END LOOP;
    INSERT INTO entries SELECT * FROM jsonb_populate_record(NULL::entries, (p->'entry') || jsonb_build_object(
        'id', v_id, 'attempt', v_attempt, 'decision', v_dec, 'audit_seq', v_seq, 'last_audit_seq', v_seq));
    FOR l IN 1..v_nl LOOP
        UPDATE budgets SET used_minor = used_minor + v_counted, used_count = used_count + 1 WHERE budget_id = v_ids[l];
        INSERT INTO usage_totals AS t (budget_id, scope, key, label, used_minor, used_count, committed_count)
        SELECT v_ids[l], s.scope, s.key, s.label, v_counted, 1, 0
        FROM (VALUES ('merchant', v_merchant, p->>'merchant_name'), ('mcc', v_mcc, NULL)) AS s(scope, key, label)
        WHERE s.key IS NOT NULL
        ON CONFLICT (budget_id, scope, key) DO UPDATE SET used_minor = t.used_minor + excluded.used_minor,
            used_count = t.used_count + excluded.used_count;
        INSERT INTO usage_buckets AS u (budget_id, scope, key, width, start, used_minor, used_count)
        SELECT v_ids[l], s.scope, s.key, w.width, w.start, v_counted, 1
        FROM (VALUES ('all', ''), ('merchant', v_merchant), ('mcc', v_mcc)) AS s(scope, key)
        CROSS JOIN (VALUES (3600000000, (p->>'hour')::bigint), (86400000000, (p->>'day')::bigint)) AS w(width, start)
        WHERE s.key IS NOT NULL
        ON CONFLICT (budget_id, scope, key, width, start) DO UPDATE SET used_minor = u.used_minor + excluded.used_minor,
            used_count = u.used_count + excluded.used_count;
    END LOOP;
APPEND_RECORD
    RETURN jsonb_build_object('s', 'ok', 'id', v_id, 'attempt', v_attempt, 'seq', v_seq, 'm', v_fm, 'c', v_fc,
                              'seen', v_seen, 'decision', v_dec)::text;
END
$fn$""".replace("LOCK_HEAD", lock_head("v_leaf")).replace("APPEND_RECORD", append_record("v_leaf", "reserve")).replace(
    "LATEST_ATTEMPT_QUERY", f"""SELECT {_ENTRY_TEXT}, e.status, e.attempt,
        (e.merchant_id, e.amount_minor, e.currency, e.checkout_id, e.action)
        = (v_merchant, (p->>'amount_minor')::bigint, p->>'amount_currency', p->>'checkout_id', 'pay')
    INTO v_row, v_status, v_attempt, v_same FROM entries e
    WHERE e.budget_id = v_leaf AND e.idempotency_key = p->>'key' ORDER BY e.attempt DESC LIMIT 1;""")
