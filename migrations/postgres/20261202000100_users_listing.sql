-- updated_at advances strictly on every change, even when two changes fall within one
-- microsecond or the clock steps back: a client comparing two answers sees which is newer.
CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger AS $$
BEGIN
    NEW.updated_at = greatest(now(), OLD.updated_at + interval '1 microsecond');
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

-- The admin list of users walks users oldest first, page by page, in this order.
CREATE INDEX users_by_creation ON users (created_at, id);
