-- Fewer indexes on devices, each of which every registration and removal
-- maintains (docs/benchmarks.md, "Device registration"):
--
-- devices_ipv4, devices_ipv6: a device's addresses are a function of its
-- address offset and the address pool, which is fixed for the database
-- (checked when the store opens), and devices_addr_offset keeps offsets
-- unique; no query looks a device up by address. With a million devices
-- they were two of the twelve pages a registration writes.
--
-- devices_seq: the peer snapshot reads the table in storage order, a
-- sequential scan about 40% faster than the index scan in seq order with
-- a million devices; nothing else reads the index (a device listing uses
-- devices_account).

-- +goose Up
DROP INDEX devices_ipv4;
DROP INDEX devices_ipv6;
DROP INDEX devices_seq;

-- +goose Down
CREATE INDEX devices_seq ON devices (seq);
CREATE UNIQUE INDEX devices_ipv6 ON devices (ipv6);
CREATE UNIQUE INDEX devices_ipv4 ON devices (ipv4);
