-- confd users and voicemails (same table shape as 001_core.sql: id, uuid,
-- tenant, JSON document, generated columns for what must be unique or indexed).

CREATE TABLE confd_user (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid        TEXT NOT NULL UNIQUE,
    tenant_uuid TEXT NOT NULL,
    doc         TEXT NOT NULL CHECK (json_valid(doc)),
    username    TEXT GENERATED ALWAYS AS (json_extract(doc, '$.username')) VIRTUAL,
    email       TEXT GENERATED ALWAYS AS (json_extract(doc, '$.email')) VIRTUAL
);
-- NULL usernames do not clash (SQLite unique indexes allow many NULLs).
CREATE UNIQUE INDEX confd_user_username ON confd_user(username);
CREATE INDEX confd_user_tenant ON confd_user(tenant_uuid);

-- Per-user live settings (forwards, services) and fallbacks: not part of the
-- user's writable document, edited through their own routes.
CREATE TABLE confd_user_feature (
    user_id   INTEGER PRIMARY KEY REFERENCES confd_user(id) ON DELETE CASCADE,
    forwards  TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(forwards)),
    services  TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(services)),
    fallbacks TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(fallbacks))
);

CREATE TABLE confd_voicemail (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid        TEXT NOT NULL UNIQUE,
    tenant_uuid TEXT NOT NULL,
    doc         TEXT NOT NULL CHECK (json_valid(doc)),
    number      TEXT GENERATED ALWAYS AS (json_extract(doc, '$.number')) VIRTUAL,
    context     TEXT GENERATED ALWAYS AS (json_extract(doc, '$.context')) VIRTUAL
);
CREATE UNIQUE INDEX confd_voicemail_number_context ON confd_voicemail(number, context);
CREATE INDEX confd_voicemail_context ON confd_voicemail(context);
CREATE INDEX confd_voicemail_tenant ON confd_voicemail(tenant_uuid);

-- One voicemail per user; a voicemail may serve several users.
CREATE TABLE confd_user_voicemail (
    user_id      INTEGER PRIMARY KEY REFERENCES confd_user(id) ON DELETE CASCADE,
    voicemail_id INTEGER NOT NULL REFERENCES confd_voicemail(id)
);
CREATE INDEX confd_user_voicemail_voicemail ON confd_user_voicemail(voicemail_id);
