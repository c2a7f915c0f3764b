-- confd switchboards (`/switchboards`): the switchboard as a document like
-- every confd resource, its member users (the operators) and its no-answer
-- fallback (an incall-style destination, null when unset).

CREATE TABLE confd_switchboard (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid        TEXT NOT NULL UNIQUE,
    tenant_uuid TEXT NOT NULL,
    doc         TEXT NOT NULL CHECK (json_valid(doc)),
    name        TEXT GENERATED ALWAYS AS (json_extract(doc, '$.name')) VIRTUAL
);
CREATE INDEX confd_switchboard_tenant ON confd_switchboard(tenant_uuid);

-- The operators, in the order the last PUT gave them.
CREATE TABLE confd_switchboard_member_user (
    switchboard_id INTEGER NOT NULL REFERENCES confd_switchboard(id) ON DELETE CASCADE,
    user_id        INTEGER NOT NULL REFERENCES confd_user(id) ON DELETE CASCADE,
    position       INTEGER NOT NULL,
    PRIMARY KEY (switchboard_id, user_id)
);
CREATE INDEX confd_switchboard_member_user_user ON confd_switchboard_member_user(user_id);

CREATE TABLE confd_switchboard_fallback (
    switchboard_id       INTEGER PRIMARY KEY REFERENCES confd_switchboard(id) ON DELETE CASCADE,
    noanswer_destination TEXT CHECK (noanswer_destination IS NULL OR json_valid(noanswer_destination))
);
