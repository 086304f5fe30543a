-- What a user's list of sessions shows: when each began and was last refreshed (Unix ms),
-- and the client it began on. Sessions from before this migration show zeros and blanks.
ALTER TABLE sessions ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN last_used_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN user_agent TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN ip TEXT NOT NULL DEFAULT '';

-- A user's sessions are listed and ended without scanning everyone's.
CREATE INDEX sessions_by_user ON sessions (user_id, expires_at);
