-- Mail: the links' tokens and the outbox, beside the users so that a token and its mail are
-- written in one transaction. Instants are Unix milliseconds, compared with the service's
-- clock, as in the embedded store.

-- A link's token: only its SHA-256 is kept, so a copy of this table opens no mailbox. One
-- live link per user and purpose (a new one deletes the older ones).
CREATE TABLE email_tokens (
    hash       bytea        PRIMARY KEY,
    purpose    varchar(16)  NOT NULL,
    user_id    uuid         NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Where the link was sent (a confirm link: the new address).
    address    varchar(254) NOT NULL,
    -- What the user must still be for the link to work: at this address, and (reset,
    -- confirm) with this password hash, as when the link was asked for.
    bound_email    varchar(254) NOT NULL,
    bound_password text,
    expires_at bigint       NOT NULL,
    -- When the link was asked for (Unix microseconds): of two requests, the later one's link
    -- is the one that stays, whatever order they were worked on.
    requested_at bigint     NOT NULL
);

CREATE INDEX email_tokens_by_user ON email_tokens (user_id, purpose);
CREATE INDEX email_tokens_by_expiry ON email_tokens (expires_at);

-- Mail waiting to go. A row leaves when it is delivered or given up. `sealed` is the link's
-- token, encrypted with a key derived from the refresh signing key.
CREATE TABLE outbox (
    id          uuid         PRIMARY KEY,
    kind        varchar(32)  NOT NULL,
    recipient   varchar(254) NOT NULL,
    sealed      bytea,
    attempts    integer      NOT NULL DEFAULT 0,
    next_at     bigint       NOT NULL,
    -- While a sender holds it (it is sending), no other instance takes it.
    lease_until bigint       NOT NULL DEFAULT 0,
    created_at  bigint       NOT NULL
);

CREATE INDEX outbox_by_due ON outbox (next_at);
