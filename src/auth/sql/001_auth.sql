-- accent-auth: tenants, users, groups, policies, sessions, tokens.
-- UUIDs are stored as lowercase hyphenated TEXT; times as unix epoch REAL.

CREATE TABLE auth_tenant (
    uuid          TEXT PRIMARY KEY NOT NULL,
    name          TEXT,
    slug          TEXT NOT NULL UNIQUE COLLATE NOCASE,
    phone         TEXT,
    contact_uuid  TEXT,
    -- the top ("master") tenant is its own parent
    parent_uuid   TEXT NOT NULL REFERENCES auth_tenant(uuid),
    default_authentication_method TEXT NOT NULL DEFAULT 'native',
    address       TEXT NOT NULL DEFAULT '{}', -- JSON object
    created_at    REAL NOT NULL
) STRICT;
CREATE INDEX auth_tenant_parent ON auth_tenant(parent_uuid);

CREATE TABLE auth_tenant_domain (
    uuid        TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL UNIQUE COLLATE NOCASE,
    tenant_uuid TEXT NOT NULL REFERENCES auth_tenant(uuid) ON DELETE CASCADE
) STRICT;

CREATE TABLE auth_user (
    uuid          TEXT PRIMARY KEY NOT NULL,
    username      TEXT UNIQUE COLLATE NOCASE,
    firstname     TEXT,
    lastname      TEXT,
    password_hash TEXT,           -- argon2id PHC string; NULL = cannot log in
    purpose       TEXT NOT NULL CHECK (purpose IN ('user', 'internal', 'external_api')),
    authentication_method TEXT NOT NULL DEFAULT 'default',
    enabled       INTEGER NOT NULL DEFAULT 1,
    tenant_uuid   TEXT NOT NULL REFERENCES auth_tenant(uuid) ON DELETE CASCADE,
    created_at    REAL NOT NULL
) STRICT;
CREATE INDEX auth_user_tenant ON auth_user(tenant_uuid);

CREATE TABLE auth_email (
    uuid      TEXT PRIMARY KEY NOT NULL,
    address   TEXT NOT NULL UNIQUE COLLATE NOCASE,
    confirmed INTEGER NOT NULL DEFAULT 0,
    main      INTEGER NOT NULL DEFAULT 0,
    user_uuid TEXT NOT NULL REFERENCES auth_user(uuid) ON DELETE CASCADE
) STRICT;
CREATE INDEX auth_email_user ON auth_email(user_uuid);

CREATE TABLE auth_policy (
    uuid           TEXT PRIMARY KEY NOT NULL,
    tenant_uuid    TEXT NOT NULL REFERENCES auth_tenant(uuid) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    slug           TEXT NOT NULL,
    description    TEXT,
    config_managed INTEGER NOT NULL DEFAULT 0,
    shared         INTEGER NOT NULL DEFAULT 0,
    UNIQUE (tenant_uuid, name),
    UNIQUE (tenant_uuid, slug)
) STRICT;

-- ACL entries of a policy, in the order they were given.
CREATE TABLE auth_policy_access (
    policy_uuid TEXT NOT NULL REFERENCES auth_policy(uuid) ON DELETE CASCADE,
    access      TEXT NOT NULL,
    position    INTEGER NOT NULL,
    PRIMARY KEY (policy_uuid, access)
) STRICT;

CREATE TABLE auth_group (
    uuid           TEXT PRIMARY KEY NOT NULL,
    tenant_uuid    TEXT NOT NULL REFERENCES auth_tenant(uuid) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    slug           TEXT NOT NULL,
    system_managed INTEGER NOT NULL DEFAULT 0,
    UNIQUE (tenant_uuid, name),
    UNIQUE (tenant_uuid, slug)
) STRICT;

CREATE TABLE auth_user_group (
    user_uuid  TEXT NOT NULL REFERENCES auth_user(uuid) ON DELETE CASCADE,
    group_uuid TEXT NOT NULL REFERENCES auth_group(uuid) ON DELETE CASCADE,
    PRIMARY KEY (user_uuid, group_uuid)
) STRICT;
CREATE INDEX auth_user_group_group ON auth_user_group(group_uuid);

CREATE TABLE auth_group_policy (
    group_uuid  TEXT NOT NULL REFERENCES auth_group(uuid) ON DELETE CASCADE,
    policy_uuid TEXT NOT NULL REFERENCES auth_policy(uuid) ON DELETE CASCADE,
    PRIMARY KEY (group_uuid, policy_uuid)
) STRICT;
CREATE INDEX auth_group_policy_policy ON auth_group_policy(policy_uuid);

CREATE TABLE auth_user_policy (
    user_uuid   TEXT NOT NULL REFERENCES auth_user(uuid) ON DELETE CASCADE,
    policy_uuid TEXT NOT NULL REFERENCES auth_policy(uuid) ON DELETE CASCADE,
    PRIMARY KEY (user_uuid, policy_uuid)
) STRICT;
CREATE INDEX auth_user_policy_policy ON auth_user_policy(policy_uuid);

CREATE TABLE auth_refresh_token (
    uuid        TEXT PRIMARY KEY NOT NULL,
    -- SHA-256 of the secret handed to the client; the secret itself is never stored
    token_hash  TEXT NOT NULL UNIQUE,
    client_id   TEXT NOT NULL,
    user_uuid   TEXT NOT NULL REFERENCES auth_user(uuid) ON DELETE CASCADE,
    tenant_uuid TEXT NOT NULL,
    backend     TEXT NOT NULL,
    login       TEXT NOT NULL,
    user_agent  TEXT NOT NULL DEFAULT '',
    remote_addr TEXT NOT NULL DEFAULT '',
    mobile      INTEGER NOT NULL DEFAULT 0,
    created_at  REAL NOT NULL,
    UNIQUE (client_id, user_uuid)
) STRICT;

CREATE TABLE auth_session (
    uuid        TEXT PRIMARY KEY NOT NULL,
    tenant_uuid TEXT NOT NULL,
    user_uuid   TEXT REFERENCES auth_user(uuid) ON DELETE CASCADE,
    mobile      INTEGER NOT NULL DEFAULT 0,
    expire_at   REAL NOT NULL,
    expire_soon_sent INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX auth_session_user ON auth_session(user_uuid);
CREATE INDEX auth_session_expire ON auth_session(expire_at);

CREATE TABLE auth_token (
    -- SHA-256 of the token handed to the client; the token itself is never stored
    token_hash    TEXT PRIMARY KEY NOT NULL,
    session_uuid  TEXT NOT NULL REFERENCES auth_session(uuid) ON DELETE CASCADE,
    auth_id       TEXT NOT NULL,
    pbx_user_uuid TEXT,
    issued_at     REAL NOT NULL,
    expire_at     REAL NOT NULL,
    acl           TEXT NOT NULL,  -- JSON array
    metadata      TEXT NOT NULL,  -- JSON object
    user_agent    TEXT NOT NULL DEFAULT '',
    remote_addr   TEXT NOT NULL DEFAULT '',
    refresh_token_uuid TEXT
) STRICT;
CREATE INDEX auth_token_session ON auth_token(session_uuid);
CREATE INDEX auth_token_expire ON auth_token(expire_at);
