-- +goose Up
-- nitronet_create_device registers a device in one round trip: the
-- registration transaction that CreateDevice otherwise runs as five
-- statements from the client (see devices.go). Called on its own, the
-- function is its own transaction, so the peer_feed row lock it takes
-- first is held only while the server runs it and commits, never across
-- a network round trip; under READ COMMITTED each of its statements
-- takes a fresh snapshot, after that lock, as the client's statements do.
--
-- In order, as CreateDevice does: advance and lock the feed counter
-- (the trigger of 00021 notifies on it), pop the lowest released
-- address offset or else take the allocator's next one up to
-- p_max_offset, insert the device under the admission conditions of
-- sqlInsertDevice, and append the peer to the feed with the new
-- version. The addresses are the pool bases (p_v4, p_v6, in inet text
-- form) plus the offset. It returns the offset.
--
-- It raises SQLSTATE NN001 when the pool is exhausted and NN002 when an
-- admission condition refused the device (the caller finds out which);
-- either way, as on any error, nothing is stored.
-- +goose StatementBegin
CREATE FUNCTION nitronet_create_device(
	p_id TEXT, p_account TEXT, p_name_sealed BYTEA, p_key TEXT,
	p_created BIGINT, p_updated BIGINT, p_limit INTEGER, p_dns INTEGER,
	p_name_index BYTEA, p_max_offset BIGINT, p_v4 TEXT, p_v6 TEXT, p_at BIGINT)
RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
	v_version BIGINT;
	v_offset BIGINT;
	v_ipv4 TEXT;
	v_ipv6 TEXT;
BEGIN
	UPDATE peer_feed SET version = version + 1 WHERE id = 1 RETURNING version INTO v_version;
	DELETE FROM ipam_free WHERE addr_offset = (SELECT min(f.addr_offset) FROM ipam_free f)
		RETURNING addr_offset INTO v_offset;
	IF v_offset IS NULL THEN
		UPDATE ipam_state SET next_offset = next_offset + 1
			WHERE id = 1 AND next_offset <= p_max_offset
			RETURNING next_offset - 1 INTO v_offset;
		IF v_offset IS NULL THEN
			RAISE EXCEPTION 'address pool exhausted' USING ERRCODE = 'NN001';
		END IF;
	END IF;
	v_ipv4 := host(p_v4::inet + v_offset);
	v_ipv6 := host(p_v6::inet + v_offset);
	INSERT INTO devices
		(id, account_id, name, name_sealed, public_key, addr_offset, ipv4, ipv6, created_at, updated_at, dns_blocking, key_created_at, name_index)
		SELECT p_id, p_account, '', p_name_sealed, p_key, v_offset, v_ipv4, v_ipv6, p_created, p_updated, p_dns, p_created, p_name_index
		WHERE EXISTS (SELECT 1 FROM accounts WHERE id = p_account AND status = 'active')
		AND (SELECT count(*) FROM devices WHERE account_id = p_account) < p_limit
		AND NOT EXISTS (SELECT 1 FROM devices WHERE public_key = p_key)
		AND NOT EXISTS (SELECT 1 FROM devices WHERE account_id = p_account AND name_index = p_name_index);
	IF NOT FOUND THEN
		RAISE EXCEPTION 'device refused' USING ERRCODE = 'NN002';
	END IF;
	INSERT INTO peer_changes (version, device_id, public_key, ipv4, ipv6, removed, created_at)
		VALUES (v_version, p_id, p_key, v_ipv4, v_ipv6, FALSE, p_at);
	RETURN v_offset;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION nitronet_create_device(TEXT, TEXT, BYTEA, TEXT, BIGINT, BIGINT, INTEGER, INTEGER, BYTEA, BIGINT, TEXT, TEXT, BIGINT);
