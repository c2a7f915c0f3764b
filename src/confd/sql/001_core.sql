-- confd: settings and the first resource table. Every confd resource table
-- has the same shape (see src/confd/docstore.rs): integer id, uuid, tenant,
-- the resource's writable fields as one JSON document, and generated columns
-- for whatever the database must index or keep unique.

CREATE TABLE confd_setting (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL CHECK (json_valid(value))
);

CREATE TABLE confd_context (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid        TEXT NOT NULL UNIQUE,
    tenant_uuid TEXT NOT NULL,
    doc         TEXT NOT NULL CHECK (json_valid(doc)),
    name        TEXT GENERATED ALWAYS AS (json_extract(doc, '$.name')) VIRTUAL,
    type        TEXT GENERATED ALWAYS AS (json_extract(doc, '$.type')) VIRTUAL
);
CREATE UNIQUE INDEX confd_context_name ON confd_context(name);
CREATE INDEX confd_context_tenant ON confd_context(tenant_uuid);

-- Included contexts, in order (PUT /contexts/{id}/contexts).
CREATE TABLE confd_context_include (
    context_id  INTEGER NOT NULL REFERENCES confd_context(id) ON DELETE CASCADE,
    included_id INTEGER NOT NULL REFERENCES confd_context(id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    PRIMARY KEY (context_id, included_id)
);

CREATE TABLE confd_extension (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid        TEXT NOT NULL UNIQUE,
    tenant_uuid TEXT NOT NULL,
    doc         TEXT NOT NULL CHECK (json_valid(doc)),
    exten       TEXT GENERATED ALWAYS AS (json_extract(doc, '$.exten')) VIRTUAL,
    context     TEXT GENERATED ALWAYS AS (json_extract(doc, '$.context')) VIRTUAL
);
CREATE UNIQUE INDEX confd_extension_exten_context ON confd_extension(exten, context);
CREATE INDEX confd_extension_context ON confd_extension(context);
CREATE INDEX confd_extension_tenant ON confd_extension(tenant_uuid);
