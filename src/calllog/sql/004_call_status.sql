-- Dialplan contexts and their tenants, read by call-log generation when neither the
-- participants nor the dialplan's events name a call's tenant (section 3.7: the requested
-- context's tenant). confd fills it, like `calllog_line`; until then it may stay empty.
CREATE TABLE calllog_context (
    name        TEXT PRIMARY KEY,
    tenant_uuid TEXT
);
