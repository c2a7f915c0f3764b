-- confd: SIP transports, SIP endpoint templates and endpoints, SCCP and custom
-- endpoints, lines, devices, and the associations between lines and the rest.
-- Resource tables have the shape of 001_core.sql (id, uuid, tenant, JSON
-- document, generated columns for what must be indexed or unique).

-- Transports are shared by every tenant; tenant_uuid records the creator's.
CREATE TABLE confd_sip_transport (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid        TEXT NOT NULL UNIQUE,
    tenant_uuid TEXT NOT NULL,
    doc         TEXT NOT NULL CHECK (json_valid(doc)),
    name        TEXT GENERATED ALWAYS AS (json_extract(doc, '$.name')) VIRTUAL
);
CREATE UNIQUE INDEX confd_sip_transport_name ON confd_sip_transport(name);

CREATE TABLE confd_endpoint_sip_template (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid        TEXT NOT NULL UNIQUE,
    tenant_uuid TEXT NOT NULL,
    doc         TEXT NOT NULL CHECK (json_valid(doc)),
    name        TEXT GENERATED ALWAYS AS (json_extract(doc, '$.name')) VIRTUAL,
    transport   TEXT GENERATED ALWAYS AS (json_extract(doc, '$.transport.uuid')) VIRTUAL
);
CREATE UNIQUE INDEX confd_endpoint_sip_template_name ON confd_endpoint_sip_template(name);
CREATE INDEX confd_endpoint_sip_template_tenant ON confd_endpoint_sip_template(tenant_uuid);
CREATE INDEX confd_endpoint_sip_template_transport ON confd_endpoint_sip_template(transport);

CREATE TABLE confd_endpoint_sip (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid        TEXT NOT NULL UNIQUE,
    tenant_uuid TEXT NOT NULL,
    doc         TEXT NOT NULL CHECK (json_valid(doc)),
    name        TEXT GENERATED ALWAYS AS (json_extract(doc, '$.name')) VIRTUAL,
    transport   TEXT GENERATED ALWAYS AS (json_extract(doc, '$.transport.uuid')) VIRTUAL
);
CREATE UNIQUE INDEX confd_endpoint_sip_name ON confd_endpoint_sip(name);
CREATE INDEX confd_endpoint_sip_tenant ON confd_endpoint_sip(tenant_uuid);
CREATE INDEX confd_endpoint_sip_transport ON confd_endpoint_sip(transport);

CREATE TABLE confd_endpoint_sccp (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid        TEXT NOT NULL UNIQUE,
    tenant_uuid TEXT NOT NULL,
    doc         TEXT NOT NULL CHECK (json_valid(doc))
);
CREATE INDEX confd_endpoint_sccp_tenant ON confd_endpoint_sccp(tenant_uuid);

CREATE TABLE confd_endpoint_custom (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid        TEXT NOT NULL UNIQUE,
    tenant_uuid TEXT NOT NULL,
    doc         TEXT NOT NULL CHECK (json_valid(doc)),
    interface   TEXT GENERATED ALWAYS AS (json_extract(doc, '$.interface')) VIRTUAL
);
CREATE UNIQUE INDEX confd_endpoint_custom_interface ON confd_endpoint_custom(interface);
CREATE INDEX confd_endpoint_custom_tenant ON confd_endpoint_custom(tenant_uuid);

CREATE TABLE confd_line (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid              TEXT NOT NULL UNIQUE,
    tenant_uuid       TEXT NOT NULL,
    doc               TEXT NOT NULL CHECK (json_valid(doc)),
    context           TEXT GENERATED ALWAYS AS (json_extract(doc, '$.context')) VIRTUAL,
    provisioning_code TEXT GENERATED ALWAYS AS (json_extract(doc, '$.provisioning_code')) VIRTUAL
);
CREATE UNIQUE INDEX confd_line_provisioning_code ON confd_line(provisioning_code);
CREATE INDEX confd_line_context ON confd_line(context);
CREATE INDEX confd_line_tenant ON confd_line(tenant_uuid);

-- Device records (provd owns the phones' configuration; confd keeps what it knows).
CREATE TABLE confd_device (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid        TEXT NOT NULL UNIQUE,
    tenant_uuid TEXT NOT NULL,
    doc         TEXT NOT NULL CHECK (json_valid(doc)),
    mac         TEXT GENERATED ALWAYS AS (json_extract(doc, '$.mac')) VIRTUAL
);
CREATE UNIQUE INDEX confd_device_mac ON confd_device(mac);
CREATE INDEX confd_device_tenant ON confd_device(tenant_uuid);

-- One endpoint per line, an endpoint on one line only.
CREATE TABLE confd_line_endpoint (
    line_id   INTEGER PRIMARY KEY REFERENCES confd_line(id) ON DELETE CASCADE,
    sip_id    INTEGER UNIQUE REFERENCES confd_endpoint_sip(id),
    sccp_id   INTEGER UNIQUE REFERENCES confd_endpoint_sccp(id),
    custom_id INTEGER UNIQUE REFERENCES confd_endpoint_custom(id),
    CHECK ((sip_id IS NOT NULL) + (sccp_id IS NOT NULL) + (custom_id IS NOT NULL) = 1)
);

-- Extensions of a line, in association order (the first is the main one).
CREATE TABLE confd_line_extension (
    line_id      INTEGER NOT NULL REFERENCES confd_line(id) ON DELETE CASCADE,
    extension_id INTEGER NOT NULL REFERENCES confd_extension(id),
    position     INTEGER NOT NULL,
    PRIMARY KEY (line_id, extension_id)
);
CREATE INDEX confd_line_extension_extension ON confd_line_extension(extension_id);

-- The device a line is provisioned on (several lines per device).
CREATE TABLE confd_line_device (
    line_id   INTEGER PRIMARY KEY REFERENCES confd_line(id) ON DELETE CASCADE,
    device_id INTEGER NOT NULL REFERENCES confd_device(id)
);
CREATE INDEX confd_line_device_device ON confd_line_device(device_id);
