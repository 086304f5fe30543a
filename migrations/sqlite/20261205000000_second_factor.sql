-- The second factor: an authenticator app's secret, recovery codes, and the logins waiting
-- for a code. Instants are Unix milliseconds. (As in migrations/postgres.)

ALTER TABLE users ADD COLUMN mfa INTEGER NOT NULL DEFAULT 0 CHECK (mfa IN (0, 1));

CREATE TABLE mfa_totp (
    user_id   TEXT    PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sealed    BLOB    NOT NULL,
    confirmed INTEGER NOT NULL DEFAULT 0,
    last_step INTEGER NOT NULL DEFAULT -1
) STRICT;

CREATE TABLE mfa_recovery_codes (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash    BLOB NOT NULL,
    PRIMARY KEY (user_id, hash)
) STRICT;

CREATE TABLE mfa_challenges (
    hash           BLOB    PRIMARY KEY NOT NULL,
    user_id        TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    bound_email    TEXT    NOT NULL,
    bound_password TEXT    NOT NULL,
    tries          INTEGER NOT NULL DEFAULT 0,
    expires_at     INTEGER NOT NULL
) STRICT;

CREATE INDEX mfa_challenges_by_expiry ON mfa_challenges (expires_at);
