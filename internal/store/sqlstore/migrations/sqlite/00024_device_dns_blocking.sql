-- +goose Up
-- The DNS blocking categories a device chose, as a set of bits (package
-- dnsblock: ads 1, trackers 2, malware 4, adult 8, gambling 16); 0 blocks
-- nothing. Its configuration names the resolver of that set; gateways
-- never see this column.
ALTER TABLE devices ADD COLUMN dns_blocking INTEGER NOT NULL DEFAULT 0 CHECK (dns_blocking BETWEEN 0 AND 31);

-- +goose Down
ALTER TABLE devices DROP COLUMN dns_blocking;
