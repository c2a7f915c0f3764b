-- /cdr over millions of call logs: indexes for `search` and `number`, and the per-tenant
-- count behind `total`. All three are kept in step with `call_log` by triggers, so every
-- writer (the service, the batch command, the benchmarks) keeps them right.

-- `search`: a trigram index over the searched columns. A phrase query on it finds every log
-- whose column contains the term (case folded), a superset of what LIKE finds; the store
-- checks the candidates with LIKE again, so results stay exactly LIKE's.
CREATE VIRTUAL TABLE call_log_search USING fts5 (
    source_name,
    source_exten,
    destination_name,
    destination_exten,
    requested_name,
    requested_exten,
    source_internal_name,
    source_internal_exten,
    destination_internal_exten,
    content = '',
    contentless_delete = 1,
    tokenize = 'trigram'
);

INSERT INTO call_log_search (rowid, source_name, source_exten, destination_name, destination_exten,
    requested_name, requested_exten, source_internal_name, source_internal_exten, destination_internal_exten)
SELECT id, source_name, source_exten, destination_name, destination_exten, requested_name, requested_exten,
    source_internal_name, source_internal_exten, destination_internal_exten
FROM call_log;

CREATE TRIGGER call_log_search_insert AFTER INSERT ON call_log BEGIN
    INSERT INTO call_log_search (rowid, source_name, source_exten, destination_name, destination_exten,
        requested_name, requested_exten, source_internal_name, source_internal_exten, destination_internal_exten)
    VALUES (new.id, new.source_name, new.source_exten, new.destination_name, new.destination_exten,
        new.requested_name, new.requested_exten, new.source_internal_name, new.source_internal_exten,
        new.destination_internal_exten);
END;

CREATE TRIGGER call_log_search_delete AFTER DELETE ON call_log BEGIN
    DELETE FROM call_log_search WHERE rowid = old.id;
END;

CREATE TRIGGER call_log_search_update AFTER UPDATE OF id, source_name, source_exten, destination_name,
    destination_exten, requested_name, requested_exten, source_internal_name, source_internal_exten,
    destination_internal_exten ON call_log BEGIN
    DELETE FROM call_log_search WHERE rowid = old.id;
    INSERT INTO call_log_search (rowid, source_name, source_exten, destination_name, destination_exten,
        requested_name, requested_exten, source_internal_name, source_internal_exten, destination_internal_exten)
    VALUES (new.id, new.source_name, new.source_exten, new.destination_name, new.destination_exten,
        new.requested_name, new.requested_exten, new.source_internal_name, new.source_internal_exten,
        new.destination_internal_exten);
END;

-- `number`: extensions as stored and reversed, each indexed, so `1234`, `1234_` and `_1234`
-- are index lookups or range scans. `store::replace` writes the reversed columns; here the
-- logs already stored get theirs (SQLite has no reverse(): a recursive CTE reverses by
-- character, as Rust's `chars().rev()` does).
ALTER TABLE call_log ADD COLUMN source_exten_rev TEXT;
ALTER TABLE call_log ADD COLUMN destination_exten_rev TEXT;

UPDATE call_log SET
    source_exten_rev = (WITH RECURSIVE r (i, out) AS (
        SELECT length(call_log.source_exten), ''
        UNION ALL SELECT i - 1, out || substr(call_log.source_exten, i, 1) FROM r WHERE i > 0
    ) SELECT out FROM r WHERE i = 0),
    destination_exten_rev = (WITH RECURSIVE r (i, out) AS (
        SELECT length(call_log.destination_exten), ''
        UNION ALL SELECT i - 1, out || substr(call_log.destination_exten, i, 1) FROM r WHERE i > 0
    ) SELECT out FROM r WHERE i = 0);

CREATE INDEX call_log_source_exten ON call_log (source_exten);
CREATE INDEX call_log_destination_exten ON call_log (destination_exten);
CREATE INDEX call_log_source_exten_rev ON call_log (source_exten_rev);
CREATE INDEX call_log_destination_exten_rev ON call_log (destination_exten_rev);

-- `total`: call logs per tenant, so a page does not count a million rows.
CREATE TABLE call_log_tenant_count (
    tenant_uuid TEXT PRIMARY KEY,
    logs        INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO call_log_tenant_count (tenant_uuid, logs)
SELECT tenant_uuid, COUNT(*) FROM call_log GROUP BY tenant_uuid;

CREATE TRIGGER call_log_count_insert AFTER INSERT ON call_log BEGIN
    INSERT INTO call_log_tenant_count (tenant_uuid, logs) VALUES (new.tenant_uuid, 1)
        ON CONFLICT (tenant_uuid) DO UPDATE SET logs = logs + 1;
END;

CREATE TRIGGER call_log_count_delete AFTER DELETE ON call_log BEGIN
    UPDATE call_log_tenant_count SET logs = logs - 1 WHERE tenant_uuid = old.tenant_uuid;
END;

CREATE TRIGGER call_log_count_update AFTER UPDATE OF tenant_uuid ON call_log BEGIN
    UPDATE call_log_tenant_count SET logs = logs - 1 WHERE tenant_uuid = old.tenant_uuid;
    INSERT INTO call_log_tenant_count (tenant_uuid, logs) VALUES (new.tenant_uuid, 1)
        ON CONFLICT (tenant_uuid) DO UPDATE SET logs = logs + 1;
END;
