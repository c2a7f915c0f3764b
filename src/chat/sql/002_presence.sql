-- chatd presences (`/api/chatd/1.0/users/{uuid}/presences`): only what a user chose is
-- stored; connected, mobile, do_not_disturb and the line states are derived from auth,
-- confd and the live Asterisk state each time, so they are right after a restart.
-- A user without a row is `unavailable`, no status, never active.
CREATE TABLE chat_presence (
    user_uuid        TEXT PRIMARY KEY NOT NULL REFERENCES confd_user(uuid) ON DELETE CASCADE,
    state            TEXT NOT NULL CHECK (state IN ('available', 'away', 'unavailable', 'invisible')),
    status           TEXT,
    last_activity_us INTEGER
) STRICT;
