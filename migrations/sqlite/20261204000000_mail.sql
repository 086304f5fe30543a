-- Mail: the links' tokens and the outbox, beside the users so that a token and its mail are
-- written in one transaction. Instants are Unix milliseconds.

-- A link's token: only its SHA-256 is kept, so a copy of this file opens no mailbox. One live
-- link per user and purpose (a new one deletes the older ones).
CREATE TABLE email_tokens (
    hash       BLOB    PRIMARY KEY NOT NULL,
    purpose    TEXT    NOT NULL,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Where the link was sent (a confirm link: the new address).
    address    TEXT    NOT NULL,
    -- What the user must still be for the link to work: at this address, and (reset,
    -- confirm) with this password hash, as when the link was asked for.
    bound_email    TEXT NOT NULL,
    bound_password TEXT,
    expires_at INTEGER NOT NULL,
    -- When the link was asked for (Unix microseconds): of two requests, the later one's link
    -- is the one that stays, whatever order they were worked on.
    requested_at INTEGER NOT NULL
) STRICT;

CREATE INDEX email_tokens_by_user ON email_tokens (user_id, purpose);
CREATE INDEX email_tokens_by_expiry ON email_tokens (expires_at);

-- Mail waiting to go. A row leaves when it is delivered or given up. `sealed` is the link's
-- token, encrypted with a key derived from the refresh signing key.
CREATE TABLE outbox (
    id          TEXT    PRIMARY KEY NOT NULL,
    kind        TEXT    NOT NULL,
    recipient   TEXT    NOT NULL,
    sealed      BLOB,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     INTEGER NOT NULL,
    lease_until INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE INDEX outbox_by_due ON outbox (next_at);
