// Package propagation holds the control-plane benchmarks at scale, on
// SQLite and PostgreSQL, with NITRONET_BENCH_PEERS devices registered
// beforehand (default 10,000; bulk-inserted through sqlstore.Import):
//
//   - BenchmarkPeerPropagation: the time from a device registration
//     through the control server's HTTP API (POST /api/v1/devices) to the
//     device's peer being admitted by a real gateway that follows the
//     server's peer feed over HTTP, and the gateway's start;
//   - BenchmarkSnapshot: one full snapshot from the database into the
//     gateway's index, in the binary format and as the JSON document.
//
// The package has no code of its own; see propagation_test.go,
// snapshot_test.go and docs/benchmarks.md. Run them with:
//
//	go test -run '^$' -bench PeerPropagation -benchtime 200x ./bench/propagation
//	NITRONET_BENCH_PEERS=1000000 go test -run '^$' -bench . -benchtime 3x -timeout 60m ./bench/propagation
//
// NITRONET_BENCH_PROFILE=DIR makes BenchmarkSnapshot write a CPU profile
// of each way's loads, without the preload, to DIR.
//
// PostgreSQL runs too when NITRONET_TEST_POSTGRES is set (see package
// storetest); otherwise those sub-benchmarks are skipped.
package propagation
