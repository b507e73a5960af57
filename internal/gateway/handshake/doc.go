// Package handshake admits WireGuard handshake initiations below
// wireguard-go, so that a gateway configures a peer on its device only when
// the peer connects.
//
// Tailscale's engine configures wireguard-go lazily too: it trims peers idle
// for five minutes and adds one back when its transport sees activity from
// it. Tailscale's transport knows which peer a packet comes from by its
// address; a gateway's clients roam and share addresses behind NAT, so here
// the initiation itself names the peer, once its static key is opened.
//
// # How an initiation gets in
//
// Bind wraps the gateway's conn.Bind. Its receive functions copy every
// handshake initiation (message type 1, 148 bytes) whose mac1 is valid into
// a bounded queue and hide it from wireguard-go; an initiation with a bad
// mac1 is dropped before any other work, and one that finds the queue full
// is dropped too. Transport packets, responses and cookie replies pass
// through on the receiving goroutine untouched: a flood of initiations
// costs the data path one blake2s and a copy per initiation, never a
// public-key operation.
//
// Workers serve the queue. For each initiation a worker opens the
// initiator's static public key (Responder.OpenStatic: the responder's half
// of the first Noise IK message up to the static key, one X25519 with the
// gateway's private key) and asks Config.Accept, which looks the key up in
// the index of admitted keys and configures it on the device if needed. An
// accepted initiation is handed to wireguard-go, byte for byte unchanged and
// with its original endpoint, through one extra receive function: the
// device processes the very initiation the client sent and answers it, so
// the client completes its handshake at the first attempt. A refused one is
// dropped; for a key that is not admitted that costs the one decryption, and
// nothing is stored, logged or counted per client.
//
// # Completed handshakes
//
// An initiation that Accept passed may still be refused by wireguard-go: a
// replay carries an old timestamp. With Config.Responded set, the gate
// remembers the sender index of each initiation it passed, and when
// wireguard-go sends the handshake response addressed to that index (the
// handshake completed) it reports the initiator's key, from a goroutine of
// its own. The gateway moves a device's addresses between its long-term key
// and its ephemeral alias only then (see package peers), so that a replayed
// initiation moves nothing.
//
// # Cookies under load, and wireguard-go's own cookie check
//
// WireGuard's defence against initiation floods is the cookie: a responder
// under load answers an initiation whose mac2 is not valid for its current
// cookie secret with a cookie reply and drops it, so only initiators that
// receive at their source address get a public-key operation. wireguard-go
// does this itself, but only after its own handshake queue is an eighth
// full, and only for what reaches it. The gate applies the same rule to its
// own queue (under load when an eighth full, and for a second after), with
// its own device.CookieChecker: under load it requires a valid mac2 before
// opening, answers with a cookie reply otherwise, and limits each source
// (hashed into fixed buckets) to wireguard-go's 20 initiations a second.
//
// Both checkers draw their cookie secret at random and cannot share it, and
// a client holds one cookie at a time, so a client cannot satisfy both at
// once: if both demanded mac2 together, a client would pass one and get a
// fresh cookie from the other, over and over. The gate therefore lets
// exactly one of them demand it at any moment:
//
//   - While wireguard-go is under load (Config.DeviceUnderLoad, which is
//     device.IsUnderLoad), it is the authority. The gate does not check mac2;
//     an initiation without one is handed on unopened, so wireguard-go
//     answers it with its cookie reply (no public-key operation anywhere),
//     and an initiation with one is opened and, if accepted, handed on for
//     wireguard-go to check.
//   - Otherwise the gate is the authority when its own queue is under load,
//     and wireguard-go, not under load, checks no mac2 at all.
//
// A client therefore always holds a cookie that the current authority
// accepts after at most one round trip; one that switches authority between
// its attempts needs one more. wireguard-go can only come under load when
// initiations of admitted keys arrive faster than it completes handshakes,
// since the gate drops every other initiation before it; while it is, an
// initiation with a forged mac2 costs the gate one decryption (bounded by
// the queue and the workers) instead of nothing.
package handshake
