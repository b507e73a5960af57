package handshake

import (
	"crypto/hmac"
	"encoding/binary"
	"hash"

	"golang.org/x/crypto/blake2s"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/curve25519"

	"github.com/nitronet/nitronet/internal/wgkey"
)

// The handshake initiation, WireGuard message type 1, is 148 bytes:
//
//	offset size field
//	     0    4 type, little-endian 1 (one type byte and three zero bytes)
//	     4    4 sender index
//	     8   32 unencrypted ephemeral public key
//	    40   48 encrypted static public key (32) and its Poly1305 tag (16)
//	    88   28 encrypted TAI64N timestamp (12) and its tag (16)
//	   116   16 mac1
//	   132   16 mac2
const (
	InitiationType = 1
	InitiationSize = 148

	offSender    = 4
	offEphemeral = 8
	offStatic    = 40
	offTimestamp = 88
	offMAC1      = 116
	offMAC2      = 132

	staticSealedSize = wgkey.Len + chacha20poly1305.Overhead
)

// The protocol name and prologue that seed WireGuard's Noise_IKpsk2
// handshake.
const (
	construction = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"
	identifier   = "WireGuard v1 zx2c4 Jason@zx2c4.com"
)

// IsInitiation reports whether b has the size and type of a handshake
// initiation. It reads nothing else.
func IsInitiation(b []byte) bool {
	return len(b) == InitiationSize && binary.LittleEndian.Uint32(b) == InitiationType
}

// Sender returns the sender index of the initiation msg. msg must satisfy
// IsInitiation.
func Sender(msg []byte) uint32 { return binary.LittleEndian.Uint32(msg[offSender:]) }

// HasMAC2 reports whether the mac2 field of the initiation msg is set, that
// is, whether its sender holds a cookie. msg must satisfy IsInitiation.
func HasMAC2(msg []byte) bool {
	var or byte
	for _, c := range msg[offMAC2:InitiationSize] {
		or |= c
	}
	return or != 0
}

// Responder opens the initiator's static key in handshake initiations
// addressed to one private key: the responder's side of the first message
// of Noise IK, up to and including the decryption of the static key. It
// neither reads nor checks the timestamp, mac1 or mac2, and it keeps no
// state between calls.
//
// A Responder is safe for concurrent use.
type Responder struct {
	private wgkey.PrivateKey
	// chain is the initial chaining key, HASH(construction).
	chain [blake2s.Size]byte
	// hash is the handshake hash after mixing in the identifier and the
	// responder's static public key, the state in which every initiation
	// addressed to this key begins.
	hash [blake2s.Size]byte
}

// NewResponder returns a Responder for the private key priv.
func NewResponder(priv wgkey.PrivateKey) *Responder {
	r := &Responder{private: priv}
	r.chain = blake2s.Sum256([]byte(construction))
	pub := priv.Public()
	mixHash(&r.hash, r.chain[:], []byte(identifier))
	mixHash(&r.hash, r.hash[:], pub[:])
	return r
}

// OpenStatic returns the static public key of the initiator of msg. It
// returns false if msg is not an initiation (see IsInitiation), if its
// ephemeral key yields an all-zero shared secret (a low-order point), or if
// the encrypted static key does not authenticate under r's private key. It
// costs one X25519 scalar multiplication and never panics, whatever msg
// holds.
//
// A true result does not authenticate the initiator: anyone who knows a
// public key can encrypt it to r. Only wireguard-go's processing of the
// timestamp, which needs the initiator's private key, does.
func (r *Responder) OpenStatic(msg []byte) (wgkey.PublicKey, bool) {
	if !IsInitiation(msg) {
		return wgkey.PublicKey{}, false
	}
	ephemeral := msg[offEphemeral:offStatic]
	sealed := msg[offStatic : offStatic+staticSealedSize]

	// h = HASH(h || e); c = KDF1(c, e)
	var h, c [blake2s.Size]byte
	mixHash(&h, r.hash[:], ephemeral)
	kdf(c[:], nil, r.chain[:], ephemeral)

	// (c, k) = KDF2(c, DH(s_priv, e))
	shared, err := curve25519.X25519(r.private[:], ephemeral)
	if err != nil {
		return wgkey.PublicKey{}, false
	}
	var key [chacha20poly1305.KeySize]byte
	kdf(c[:], key[:], c[:], shared)
	clear(shared)

	aead, err := chacha20poly1305.New(key[:])
	clear(key[:])
	if err != nil {
		return wgkey.PublicKey{}, false
	}
	var nonce [chacha20poly1305.NonceSize]byte
	var pub wgkey.PublicKey
	if _, err := aead.Open(pub[:0], nonce[:], sealed, h[:]); err != nil {
		return wgkey.PublicKey{}, false
	}
	return pub, true
}

// mixHash sets dst to HASH(prev || data), BLAKE2s-256.
func mixHash(dst *[blake2s.Size]byte, prev, data []byte) {
	d, _ := blake2s.New256(nil)
	d.Write(prev)
	d.Write(data)
	d.Sum(dst[:0])
}

func newBlake2s() hash.Hash {
	d, _ := blake2s.New256(nil)
	return d
}

// kdf is the HKDF of the Noise spec over HMAC-BLAKE2s: with
// prk = HMAC(chain, input) it writes T1 = HMAC(prk, 0x01) to out1 and, if
// out2 is not nil, T2 = HMAC(prk, T1 || 0x02) to out2. out1 and out2 are 32
// bytes long and may alias chain.
func kdf(out1, out2, chain, input []byte) {
	m := hmac.New(newBlake2s, chain)
	m.Write(input)
	prk := m.Sum(nil)

	m = hmac.New(newBlake2s, prk)
	m.Write([]byte{1})
	t1 := m.Sum(nil)
	if out2 != nil {
		m.Reset()
		m.Write(t1)
		m.Write([]byte{2})
		m.Sum(out2[:0])
	}
	copy(out1, t1)
	clear(prk)
	clear(t1)
}
