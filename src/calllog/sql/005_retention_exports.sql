-- call-logd: per-tenant retention (PUT /retention) and recording exports (ZIP files).

-- NULL days mean "the default from the configuration".
CREATE TABLE call_log_retention (
    tenant_uuid    TEXT PRIMARY KEY,
    cdr_days       INTEGER CHECK (cdr_days IS NULL OR cdr_days >= 0),
    recording_days INTEGER CHECK (recording_days IS NULL OR recording_days >= 0),
    export_days    INTEGER CHECK (export_days IS NULL OR export_days >= 0)
);

CREATE TABLE call_log_export (
    uuid            TEXT PRIMARY KEY,
    tenant_uuid     TEXT NOT NULL,
    user_uuid       TEXT NOT NULL,
    requested_at_us INTEGER NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'finished', 'deleted', 'error')),
    -- The ZIP file once finished (inside the data dir's exports folder).
    path            TEXT
);
CREATE INDEX call_log_export_tenant_requested ON call_log_export (tenant_uuid, requested_at_us);
