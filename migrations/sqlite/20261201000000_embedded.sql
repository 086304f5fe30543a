-- The embedded store: users, sessions and login counters in one file.
-- Ids are UUIDs as text; instants at which an entry ends (expires_at) are Unix milliseconds,
-- compared with the service's clock as Redis compares its TTLs.

CREATE TABLE users (
    id            TEXT    PRIMARY KEY NOT NULL,
    name          TEXT    NOT NULL CHECK (trim(name) <> '' AND length(name) <= 100),
    -- Stored trimmed and lowercased by the service, so plain uniqueness is case-insensitive.
    email         TEXT    NOT NULL UNIQUE CHECK (email = lower(email) AND length(email) <= 254),
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL DEFAULT 'user',
    photo         TEXT    NOT NULL DEFAULT 'default.png' CHECK (length(photo) <= 255),
    verified      INTEGER NOT NULL DEFAULT 0,
    provider      TEXT    NOT NULL DEFAULT 'local',
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL
) STRICT;

-- One per login; alive as long as its newest refresh token.
CREATE TABLE sessions (
    sid        TEXT    PRIMARY KEY NOT NULL,
    user_id    TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

-- One per issued token; a token is live while its row and its session's row are.
CREATE TABLE tokens (
    token_uuid   TEXT    PRIMARY KEY NOT NULL,
    sid          TEXT    NOT NULL,
    user_id      TEXT    NOT NULL,
    expires_at   INTEGER NOT NULL,
    -- Refresh tokens only: the access token issued with it,
    access_uuid  TEXT,
    -- once rotated, what it became (enough to sign the successors again),
    next_access  TEXT,
    next_refresh TEXT,
    next_iat     INTEGER,
    -- and until when a replay counts as another tab rather than reuse.
    grace_until  INTEGER
) STRICT;

-- Sessions revoked because a rotated refresh token (token_uuid) was replayed: that token
-- keeps answering refresh_reused, where the session's other tokens, and the leftovers of an
-- ordinary logout, answer session_revoked.
CREATE TABLE reused_sessions (
    sid        TEXT    PRIMARY KEY NOT NULL,
    token_uuid TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

-- Failed-login counters: a fixed window from the first attempt.
CREATE TABLE login_attempts (
    key        TEXT    PRIMARY KEY NOT NULL,
    count      INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

-- For the periodic purge of ended rows, which holds the only writer while it runs.
CREATE INDEX tokens_by_expiry ON tokens (expires_at);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
CREATE INDEX reused_sessions_by_expiry ON reused_sessions (expires_at);
CREATE INDEX login_attempts_by_expiry ON login_attempts (expires_at);
