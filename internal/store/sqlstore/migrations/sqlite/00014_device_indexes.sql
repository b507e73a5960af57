-- Fewer indexes on devices, each of which every registration and removal
-- maintains (docs/benchmarks.md, "Device registration"): devices_ipv4 and
-- devices_ipv6 go. A device's addresses are a function of its address
-- offset and the address pool, which is fixed for the database (checked
-- when the store opens), and devices_addr_offset keeps offsets unique; no
-- query looks a device up by address. With a million devices present,
-- dropping them cut a registration's page writes by a quarter.
--
-- (PostgreSQL's 00014 also drops devices_seq; here seq is the rowid,
-- which has no separate index.)

-- +goose Up
DROP INDEX devices_ipv4;
DROP INDEX devices_ipv6;

-- +goose Down
CREATE UNIQUE INDEX devices_ipv6 ON devices (ipv6);
CREATE UNIQUE INDEX devices_ipv4 ON devices (ipv4);
