-- Call logs generated from CEL (call-logd). Times are integer microseconds since the epoch,
-- UTC, so they sort and compare as integers.
CREATE TABLE call_log (
    id                           INTEGER PRIMARY KEY,
    tenant_uuid                  TEXT NOT NULL,
    -- The smallest linkedid of the CEL group: one log per conversation, so generating the
    -- same CELs again replaces the log instead of adding one.
    conversation_id              TEXT NOT NULL UNIQUE,
    start_us                     INTEGER NOT NULL,
    answer_us                    INTEGER,
    end_us                       INTEGER,
    call_direction               TEXT NOT NULL CHECK (call_direction IN ('internal', 'inbound', 'outbound')),
    source_name                  TEXT NOT NULL DEFAULT '',
    source_exten                 TEXT NOT NULL DEFAULT '',
    source_internal_name         TEXT,
    source_internal_exten        TEXT,
    source_internal_context      TEXT,
    source_line_identity         TEXT,
    requested_name               TEXT,
    requested_exten              TEXT,
    requested_context            TEXT,
    requested_internal_exten     TEXT,
    requested_internal_context   TEXT,
    destination_name             TEXT,
    destination_exten            TEXT,
    destination_internal_exten   TEXT,
    destination_internal_context TEXT,
    destination_line_identity    TEXT,
    destination_details          TEXT NOT NULL DEFAULT '{}',
    user_field                   TEXT,
    created_us                   INTEGER NOT NULL
);
CREATE INDEX call_log_start ON call_log (start_us);
CREATE INDEX call_log_tenant_start ON call_log (tenant_uuid, start_us);

CREATE TABLE call_log_participant (
    id           INTEGER PRIMARY KEY,
    call_log_id  INTEGER NOT NULL REFERENCES call_log (id) ON DELETE CASCADE,
    user_uuid    TEXT NOT NULL,
    line_id      INTEGER,
    role         TEXT NOT NULL CHECK (role IN ('source', 'destination')),
    tags         TEXT NOT NULL DEFAULT '[]',
    answered     INTEGER NOT NULL DEFAULT 0,
    requested    INTEGER NOT NULL DEFAULT 0,
    peer_exten   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX call_log_participant_log ON call_log_participant (call_log_id);
CREATE INDEX call_log_participant_user ON call_log_participant (user_uuid, call_log_id);

CREATE TABLE call_log_recording (
    uuid         TEXT PRIMARY KEY,
    call_log_id  INTEGER NOT NULL REFERENCES call_log (id) ON DELETE CASCADE,
    start_us     INTEGER NOT NULL,
    end_us       INTEGER NOT NULL,
    path         TEXT,
    deleted      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX call_log_recording_log ON call_log_recording (call_log_id);
