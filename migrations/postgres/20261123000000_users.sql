-- Users. Emails are stored lowercased and unique case-insensitively, enforced here
-- so that two concurrent registrations cannot both succeed.
CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name          varchar(100) NOT NULL CHECK (btrim(name) <> ''),
    email         varchar(254) NOT NULL CHECK (email = lower(email)),
    password_hash text         NOT NULL,
    role          varchar(32)  NOT NULL DEFAULT 'user',
    photo         varchar(255) NOT NULL DEFAULT 'default.png',
    verified      boolean      NOT NULL DEFAULT false,
    provider      varchar(32)  NOT NULL DEFAULT 'local',
    created_at    timestamptz  NOT NULL DEFAULT now(),
    updated_at    timestamptz  NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE FUNCTION set_updated_at() RETURNS trigger AS $$
BEGIN
    NEW.updated_at = now();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER users_set_updated_at
    BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
