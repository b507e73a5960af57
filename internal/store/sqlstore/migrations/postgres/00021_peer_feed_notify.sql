-- +goose Up
-- Every transaction that changes the peer feed advances peer_feed.version
-- (see lockFeed, reserveFeed and appendChanges). This trigger sends a
-- notification on the channel nitronet_peer_feed, with the new version as
-- its payload, in that same transaction: PostgreSQL delivers it when the
-- transaction commits and never if it rolls back. Every control replica
-- LISTENs on the channel and wakes its waiting gateway polls at once,
-- whichever replica (or `nitronet admin` command) made the change.
-- +goose StatementBegin
CREATE FUNCTION nitronet_peer_feed_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('nitronet_peer_feed', NEW.version::text);
	RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER peer_feed_notify AFTER UPDATE OF version ON peer_feed
	FOR EACH ROW WHEN (NEW.version IS DISTINCT FROM OLD.version)
	EXECUTE FUNCTION nitronet_peer_feed_notify();

-- +goose Down
DROP TRIGGER peer_feed_notify ON peer_feed;
DROP FUNCTION nitronet_peer_feed_notify();
