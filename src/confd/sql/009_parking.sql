-- confd parking lots (`/parkinglots`): the lot (slots, timeout, music on
-- hold) as a document like every confd resource, and the one extension
-- (`parkext`, in an internal context) that parks calls into it.

CREATE TABLE confd_parking_lot (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid        TEXT NOT NULL UNIQUE,
    tenant_uuid TEXT NOT NULL,
    doc         TEXT NOT NULL CHECK (json_valid(doc)),
    name        TEXT GENERATED ALWAYS AS (json_extract(doc, '$.name')) VIRTUAL
);
CREATE INDEX confd_parking_lot_tenant ON confd_parking_lot(tenant_uuid);

-- A lot has at most one extension; an extension parks into one lot.
CREATE TABLE confd_parking_lot_extension (
    parking_lot_id INTEGER PRIMARY KEY REFERENCES confd_parking_lot(id) ON DELETE CASCADE,
    extension_id   INTEGER NOT NULL UNIQUE REFERENCES confd_extension(id)
);
