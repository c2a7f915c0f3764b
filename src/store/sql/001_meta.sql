-- Process-wide facts: installation uuid, first-start markers.
CREATE TABLE accentd_meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;
