-- Line identities (lowercased `protocol/name` of a channel) and the users owning them, read by
-- call-log generation to resolve participants. confd fills it; until then it may stay empty.
CREATE TABLE calllog_line (
    identity    TEXT PRIMARY KEY,
    line_id     INTEGER,
    user_uuid   TEXT,
    tenant_uuid TEXT,
    tags        TEXT DEFAULT '[]', -- JSON list of strings
    user_name   TEXT,
    exten       TEXT,
    context     TEXT
);
