-- Dialplan contexts and their tenants, read by call-log generation when neither the
-- participants nor the dialplan's events name a call's tenant (section 3.7: the requested
-- context's tenant). confd fills it, like `calllog_line`; until then it may stay empty.
CREATE TABLE calllog_context (
    name        TEXT PRIMARY KEY,
    tenant_uuid TEXT
);

-- The call's outcome, upstream's newer `call_status`: blocked (the callee blocks the caller's
-- number), voicemail (not answered, reached a mailbox), answered, else unknown.
ALTER TABLE call_log ADD COLUMN call_status TEXT NOT NULL DEFAULT 'unknown'
    CHECK (call_status IN ('answered', 'blocked', 'voicemail', 'unknown'));
-- Logs generated before: the answered ones are known, the others stay unknown until generated
-- again.
UPDATE call_log SET call_status = 'answered' WHERE answer_us IS NOT NULL;
