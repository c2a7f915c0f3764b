-- Every CEL row accentd receives (AMI, files, databases), so that call-log generation can always
-- be run again. Text columns are never NULL ('' for empty), as in the sources.
CREATE TABLE cel (
    id INTEGER PRIMARY KEY,
    eventtype TEXT NOT NULL,            -- system type, or the user event's own name
    eventtime INTEGER NOT NULL,         -- microseconds since the epoch, UTC
    userdeftype TEXT NOT NULL DEFAULT '',
    cid_name TEXT NOT NULL DEFAULT '',
    cid_num TEXT NOT NULL DEFAULT '',
    cid_ani TEXT NOT NULL DEFAULT '',
    cid_rdnis TEXT NOT NULL DEFAULT '',
    cid_dnid TEXT NOT NULL DEFAULT '',
    exten TEXT NOT NULL DEFAULT '',
    context TEXT NOT NULL DEFAULT '',
    channame TEXT NOT NULL DEFAULT '',
    appname TEXT NOT NULL DEFAULT '',
    appdata TEXT NOT NULL DEFAULT '',
    amaflags INTEGER NOT NULL DEFAULT 0,
    accountcode TEXT NOT NULL DEFAULT '',
    peeraccount TEXT NOT NULL DEFAULT '',
    uniqueid TEXT NOT NULL DEFAULT '',
    linkedid TEXT NOT NULL DEFAULT '',
    userfield TEXT NOT NULL DEFAULT '',
    peer TEXT NOT NULL DEFAULT '',
    extra TEXT NOT NULL DEFAULT '',
    tenantid TEXT NOT NULL DEFAULT ''
);

-- The natural key: importing the same rows again inserts nothing (INSERT OR IGNORE). It starts
-- with linkedid, so it is also the index for "all rows of these calls".
CREATE UNIQUE INDEX cel_natural_key ON cel (linkedid, uniqueid, eventtime, eventtype, channame, appdata);
-- Merging groups that share a channel.
CREATE INDEX cel_uniqueid ON cel (uniqueid);
-- Time ranges (catch-up) and retention.
CREATE INDEX cel_eventtime ON cel (eventtime);
