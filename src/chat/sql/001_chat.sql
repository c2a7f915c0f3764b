-- chatd rooms and messages (`/api/chatd/1.0/users/me/rooms...`).

-- A room of a tenant. `members_key` is its member uuids sorted and joined by ',': creating a
-- room for a user set that already has one returns that room, and the unique index makes the
-- lookup one probe (and two concurrent creations of the same set one room).
-- `message_count` is kept by the triggers below, so `total` never counts a room's messages.
CREATE TABLE chat_room (
    id            INTEGER PRIMARY KEY,
    uuid          TEXT NOT NULL UNIQUE,
    tenant_uuid   TEXT NOT NULL,
    name          TEXT,
    members_key   TEXT NOT NULL,
    message_count INTEGER NOT NULL DEFAULT 0,
    created_us    INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX chat_room_members ON chat_room (tenant_uuid, members_key);

-- The members, in the order the creation request gave them (the creator last when added).
CREATE TABLE chat_room_user (
    room_id     INTEGER NOT NULL REFERENCES chat_room(id) ON DELETE CASCADE,
    user_uuid   TEXT NOT NULL,
    tenant_uuid TEXT NOT NULL,
    wazo_uuid   TEXT NOT NULL,
    position    INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_uuid)
) STRICT, WITHOUT ROWID;
-- "the rooms of a user": every list and search starts there.
CREATE INDEX chat_room_user_user ON chat_room_user (user_uuid, room_id);

CREATE TABLE chat_message (
    id          INTEGER PRIMARY KEY,
    uuid        TEXT NOT NULL UNIQUE,
    room_id     INTEGER NOT NULL REFERENCES chat_room(id) ON DELETE CASCADE,
    content     TEXT NOT NULL,
    alias       TEXT,
    user_uuid   TEXT NOT NULL,
    tenant_uuid TEXT NOT NULL,
    wazo_uuid   TEXT NOT NULL,
    created_us  INTEGER NOT NULL
) STRICT;
-- A room's page in either direction, `from_date` ranges, and a room's latest message
-- (`distinct=room_uuid`) are all walks of this index.
CREATE INDEX chat_message_room_time ON chat_message (room_id, created_us, id);

-- `search`: a trigram index of the contents, case and accent folded as upstream's
-- `unaccent(content) ILIKE` is. A phrase query finds every message containing a word
-- (substring, any position); the text itself stays in `chat_message` only.
CREATE VIRTUAL TABLE chat_message_search USING fts5 (
    content,
    content = '',
    contentless_delete = 1,
    tokenize = 'trigram remove_diacritics 1'
);

CREATE TRIGGER chat_message_insert AFTER INSERT ON chat_message BEGIN
    INSERT INTO chat_message_search (rowid, content) VALUES (new.id, new.content);
    UPDATE chat_room SET message_count = message_count + 1 WHERE id = new.room_id;
END;

CREATE TRIGGER chat_message_delete AFTER DELETE ON chat_message BEGIN
    DELETE FROM chat_message_search WHERE rowid = old.id;
    UPDATE chat_room SET message_count = message_count - 1 WHERE id = old.room_id;
END;

CREATE TRIGGER chat_message_update AFTER UPDATE OF id, content ON chat_message BEGIN
    DELETE FROM chat_message_search WHERE rowid = old.id;
    INSERT INTO chat_message_search (rowid, content) VALUES (new.id, new.content);
END;
