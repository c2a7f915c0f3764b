-- confd routing: trunks, incoming calls (incalls), outgoing calls (outcalls),
-- their associations, and the feature codes (`/extensions/features`).
-- Resource tables have the shape of 001_core.sql (id, uuid, tenant, JSON
-- document, generated columns for what must be indexed or unique).

CREATE TABLE confd_trunk (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid        TEXT NOT NULL UNIQUE,
    tenant_uuid TEXT NOT NULL,
    doc         TEXT NOT NULL CHECK (json_valid(doc)),
    context     TEXT GENERATED ALWAYS AS (json_extract(doc, '$.context')) VIRTUAL
);
CREATE INDEX confd_trunk_context ON confd_trunk(context);
CREATE INDEX confd_trunk_tenant ON confd_trunk(tenant_uuid);

-- One endpoint per trunk; an endpoint serves one trunk (and then no line).
-- iax_id has no table yet (IAX endpoints are not provisioned).
CREATE TABLE confd_trunk_endpoint (
    trunk_id  INTEGER PRIMARY KEY REFERENCES confd_trunk(id) ON DELETE CASCADE,
    sip_id    INTEGER UNIQUE REFERENCES confd_endpoint_sip(id),
    iax_id    INTEGER UNIQUE,
    custom_id INTEGER UNIQUE REFERENCES confd_endpoint_custom(id),
    CHECK ((sip_id IS NOT NULL) + (iax_id IS NOT NULL) + (custom_id IS NOT NULL) = 1)
);

CREATE TABLE confd_incall (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid             TEXT NOT NULL UNIQUE,
    tenant_uuid      TEXT NOT NULL,
    doc              TEXT NOT NULL CHECK (json_valid(doc)),
    destination_type TEXT GENERATED ALWAYS AS (json_extract(doc, '$.destination.type')) VIRTUAL
);
CREATE INDEX confd_incall_tenant ON confd_incall(tenant_uuid);
CREATE INDEX confd_incall_destination_type ON confd_incall(destination_type);

-- The DIDs of an incall; an extension routes to one incall.
CREATE TABLE confd_incall_extension (
    incall_id    INTEGER NOT NULL REFERENCES confd_incall(id) ON DELETE CASCADE,
    extension_id INTEGER NOT NULL UNIQUE REFERENCES confd_extension(id),
    PRIMARY KEY (incall_id, extension_id)
);

CREATE TABLE confd_outcall (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid        TEXT NOT NULL UNIQUE,
    tenant_uuid TEXT NOT NULL,
    doc         TEXT NOT NULL CHECK (json_valid(doc)),
    name        TEXT GENERATED ALWAYS AS (json_extract(doc, '$.name')) VIRTUAL
);
CREATE UNIQUE INDEX confd_outcall_name ON confd_outcall(name);
CREATE INDEX confd_outcall_tenant ON confd_outcall(tenant_uuid);

-- The trunks an outcall tries, in order (position 0 first).
CREATE TABLE confd_outcall_trunk (
    outcall_id INTEGER NOT NULL REFERENCES confd_outcall(id) ON DELETE CASCADE,
    trunk_id   INTEGER NOT NULL REFERENCES confd_trunk(id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    PRIMARY KEY (outcall_id, trunk_id)
);
CREATE INDEX confd_outcall_trunk_trunk ON confd_outcall_trunk(trunk_id);

-- The dial patterns of an outcall and how each rewrites the number.
CREATE TABLE confd_outcall_extension (
    outcall_id      INTEGER NOT NULL REFERENCES confd_outcall(id) ON DELETE CASCADE,
    extension_id    INTEGER NOT NULL UNIQUE REFERENCES confd_extension(id),
    prefix          TEXT,
    external_prefix TEXT,
    strip_digits    INTEGER NOT NULL DEFAULT 0,
    caller_id       TEXT,
    PRIMARY KEY (outcall_id, extension_id)
);

-- Feature codes (`*90`, `_*21.`...), shared by every tenant (the nil tenant),
-- in the features context; `feature` names the dialplan subroutine and never
-- changes, `exten` and `enabled` are editable.
CREATE TABLE confd_feature_extension (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid        TEXT NOT NULL UNIQUE,
    tenant_uuid TEXT NOT NULL,
    doc         TEXT NOT NULL CHECK (json_valid(doc)),
    feature     TEXT GENERATED ALWAYS AS (json_extract(doc, '$.feature')) VIRTUAL,
    exten       TEXT GENERATED ALWAYS AS (json_extract(doc, '$.exten')) VIRTUAL
);
CREATE UNIQUE INDEX confd_feature_extension_feature ON confd_feature_extension(feature);
CREATE UNIQUE INDEX confd_feature_extension_exten ON confd_feature_extension(exten);

INSERT INTO confd_feature_extension (uuid, tenant_uuid, doc)
SELECT lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' ||
       substr(lower(hex(randomblob(2))), 2) || '-' ||
       substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' ||
       lower(hex(randomblob(6))),
       '00000000-0000-0000-0000-000000000000',
       json_object('feature', column1, 'exten', column2,
                   'enabled', json(CASE column3 WHEN 1 THEN 'true' ELSE 'false' END))
FROM (VALUES
    ('agentdynamiclogin', '_*33.', 1),
    ('agentstaticlogin', '_*31.', 1),
    ('agentstaticlogoff', '_*32.', 1),
    ('agentstaticlogtoggle', '_*30.', 1),
    ('autoprov', '*48378', 1),
    ('bsfilter', '_*37.', 1),
    ('callgroup', '_*664.', 1),
    ('calllistening', '*34', 1),
    ('callqueue', '_*665.', 1),
    ('callrecord', '*26', 1),
    ('calluser', '_*666.', 1),
    ('directoryaccess', '*36', 1),
    ('enablednd', '*25', 1),
    ('enablevm', '*90', 1),
    ('enablevmbox', '*91', 1),
    ('enablevmboxslt', '_*91.', 1),
    ('enablevmslt', '_*90.', 1),
    ('fwdbusy', '_*23.', 1),
    ('fwdrna', '_*22.', 1),
    ('fwdunc', '_*21.', 1),
    ('fwdundoall', '*20', 1),
    ('groupaddmember', '_*51.', 1),
    ('groupremovemember', '_*52.', 1),
    ('grouptogglemember', '_*50.', 1),
    ('incallfilter', '*27', 1),
    ('paging', '_*11.', 1),
    ('phoneprogfunckey', '_*735.', 1),
    ('phonestatus', '*10', 1),
    ('pickup', '_*8.', 1),
    ('queueaddmember', '_*56.', 1),
    ('queueremovemember', '_*57.', 1),
    ('queuetogglemember', '_*55.', 1),
    ('recsnd', '*9', 1),
    ('vmboxmsgslt', '_*99.', 1),
    ('vmboxpurgeslt', '_*93.', 0),
    ('vmboxslt', '_*97.', 1),
    ('vmusermsg', '*98', 1),
    ('vmuserpurge', '*92', 0),
    ('vmuserpurgeslt', '_*92.', 0),
    ('vmuserslt', '_*96.', 1)
);
