-- The second factor: an authenticator app's secret, recovery codes, and the logins waiting
-- for a code. Instants are Unix milliseconds, compared with the service's clock.

-- Whether the user has a confirmed second factor: in the user object and every login.
ALTER TABLE users ADD COLUMN mfa boolean NOT NULL DEFAULT false;

-- One secret per user, sealed (AES-256-GCM, with MFA_ENCRYPTION_KEY, bound to the user):
-- a copy of this table makes no codes. `last_step` is the 30-second step of the last code
-- accepted: a code is accepted only for a later step, so each works once.
CREATE TABLE mfa_totp (
    user_id   uuid    PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    sealed    bytea   NOT NULL,
    confirmed boolean NOT NULL DEFAULT false,
    last_step bigint  NOT NULL DEFAULT -1
);

-- Recovery codes, as keyed hashes (HMAC-SHA-256); a used one is deleted.
CREATE TABLE mfa_recovery_codes (
    user_id uuid  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash    bytea NOT NULL,
    PRIMARY KEY (user_id, hash)
);

-- A password step that waits for its code: the SHA-256 of its mfa_token, what the user must
-- still be (this address and password hash) for the login to finish, and how many codes were
-- tried with it (at most 5).
CREATE TABLE mfa_challenges (
    hash           bytea        PRIMARY KEY,
    user_id        uuid         NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    bound_email    varchar(254) NOT NULL,
    bound_password text         NOT NULL,
    tries          integer      NOT NULL DEFAULT 0,
    expires_at     bigint       NOT NULL
);

CREATE INDEX mfa_challenges_by_expiry ON mfa_challenges (expires_at);
