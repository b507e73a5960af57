// Package propagation holds the peer-propagation benchmark: the time from a
// device registration through the control server's HTTP API (POST
// /api/v1/devices) to the device's peer being configured on a real gateway
// that follows the server's peer feed over HTTP, with 10,000 peers already
// configured. The package has no code of its own; see
// BenchmarkPeerPropagation in propagation_test.go and docs/benchmarks.md.
//
// Run it with:
//
//	go test -run '^$' -bench PeerPropagation -benchtime 200x ./bench/propagation
//
// PostgreSQL runs too when NITRONET_TEST_POSTGRES is set (see package
// storetest); otherwise that sub-benchmark is skipped.
package propagation
