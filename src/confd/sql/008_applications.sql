-- confd applications: Stasis applications (`accent-app-<uuid>` in Asterisk)
-- that calld drives, and the lines whose calls enter one. Same document
-- shape as the other resource tables (001_core.sql).

CREATE TABLE confd_application (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid        TEXT NOT NULL UNIQUE,
    tenant_uuid TEXT NOT NULL,
    doc         TEXT NOT NULL CHECK (json_valid(doc)),
    name        TEXT GENERATED ALWAYS AS (json_extract(doc, '$.name')) VIRTUAL
);
CREATE INDEX confd_application_tenant ON confd_application(tenant_uuid);

-- A line sends its calls into at most one application.
CREATE TABLE confd_line_application (
    line_id        INTEGER PRIMARY KEY REFERENCES confd_line(id) ON DELETE CASCADE,
    application_id INTEGER NOT NULL REFERENCES confd_application(id) ON DELETE CASCADE
);
CREATE INDEX confd_line_application_app ON confd_line_application(application_id);
