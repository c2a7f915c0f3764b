-- confd: conference rooms (ConfBridge) and the extensions reaching them.
CREATE TABLE confd_conference (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid        TEXT NOT NULL UNIQUE,
    tenant_uuid TEXT NOT NULL,
    doc         TEXT NOT NULL CHECK (json_valid(doc))
);
CREATE INDEX confd_conference_tenant ON confd_conference(tenant_uuid);

-- A conference has at most one extension; an extension reaches one conference.
CREATE TABLE confd_conference_extension (
    conference_id INTEGER NOT NULL UNIQUE REFERENCES confd_conference(id) ON DELETE CASCADE,
    extension_id  INTEGER NOT NULL UNIQUE REFERENCES confd_extension(id),
    PRIMARY KEY (conference_id, extension_id)
);
