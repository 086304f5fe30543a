-- The admin list of users walks users oldest first, page by page, in this order. The
-- instants are RFC 3339 text in UTC as sqlx writes them, whose text order is time order.
CREATE INDEX users_by_creation ON users (created_at, id);
