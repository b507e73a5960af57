// Package password hashes and verifies passwords with argon2id and checks the
// password policy (Check, Validate: length, and zxcvbn's estimate of how
// guessable it is, with the user's contacts as context).
//
// Hashes are stored as PHC strings, the format of the argon2 reference
// implementation:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>
//
// where salt and key are standard base64 without padding. Parameters travel
// with each hash, so raising them later only needs Verify's needsRehash.
package password

import (
	"context"
	cryptorand "crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/nitronet/nitronet/internal/errs"
	"golang.org/x/crypto/argon2"
)

// Params are argon2id parameters.
type Params struct {
	Memory  uint32 // memory cost in KiB
	Time    uint32 // number of passes
	Threads uint8  // degree of parallelism
	SaltLen uint32 // salt length in bytes
	KeyLen  uint32 // derived key length in bytes
}

// DefaultParams returns OWASP's minimum argon2id parameters: m=19456 KiB
// (19 MiB), t=2, p=1, with a 16-byte salt and a 32-byte key.
func DefaultParams() Params {
	return Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// Limits on parameters. NewHasher refuses parameters outside
// [DefaultParams, Max*]. Verify refuses a stored hash whose parameters exceed
// the Max* limits, so a hostile or corrupt stored string cannot make a
// single verification use unbounded memory or time.
const (
	MaxMemory  = 1 << 20 // KiB, 1 GiB
	MaxTime    = 16
	MaxThreads = 64
	MaxSaltLen = 64
	MaxKeyLen  = 64

	minVerifySaltLen = 8  // argon2 specification minimum
	minVerifyKeyLen  = 16 // shorter stored keys are refused as corrupt
	maxPHCLen        = 256
)

// Policy limits, in characters (Unicode code points).
const (
	MinLength = 10
	MaxLength = 256
)

// check reports whether p is within the limits for a new Hasher.
func (p Params) check() error {
	floor := DefaultParams()
	switch {
	case p.Memory < floor.Memory || p.Memory > MaxMemory:
		return fmt.Errorf("memory %d KiB outside [%d, %d]", p.Memory, floor.Memory, MaxMemory)
	case p.Time < floor.Time || p.Time > MaxTime:
		return fmt.Errorf("time %d outside [%d, %d]", p.Time, floor.Time, MaxTime)
	case p.Threads < floor.Threads || p.Threads > MaxThreads:
		return fmt.Errorf("threads %d outside [%d, %d]", p.Threads, floor.Threads, MaxThreads)
	case p.SaltLen < floor.SaltLen || p.SaltLen > MaxSaltLen:
		return fmt.Errorf("salt length %d outside [%d, %d]", p.SaltLen, floor.SaltLen, MaxSaltLen)
	case p.KeyLen < floor.KeyLen || p.KeyLen > MaxKeyLen:
		return fmt.Errorf("key length %d outside [%d, %d]", p.KeyLen, floor.KeyLen, MaxKeyLen)
	}
	return nil
}

// checkVerifiable reports whether a parsed stored hash is cheap enough to
// verify. It allows parameters weaker than DefaultParams so old hashes can
// still be verified and then rehashed.
func checkVerifiable(p Params) error {
	switch {
	case p.Memory > MaxMemory:
		return fmt.Errorf("memory %d KiB over limit %d", p.Memory, MaxMemory)
	case p.Time > MaxTime:
		return fmt.Errorf("time %d over limit %d", p.Time, MaxTime)
	case p.Threads > MaxThreads:
		return fmt.Errorf("threads %d over limit %d", p.Threads, MaxThreads)
	case p.SaltLen < minVerifySaltLen || p.SaltLen > MaxSaltLen:
		return fmt.Errorf("salt length %d outside [%d, %d]", p.SaltLen, minVerifySaltLen, MaxSaltLen)
	case p.KeyLen < minVerifyKeyLen || p.KeyLen > MaxKeyLen:
		return fmt.Errorf("key length %d outside [%d, %d]", p.KeyLen, minVerifyKeyLen, MaxKeyLen)
	}
	return nil
}

// weaker reports whether p is weaker than q in any parameter.
func (p Params) weaker(q Params) bool {
	return p.Memory < q.Memory || p.Time < q.Time || p.Threads < q.Threads ||
		p.SaltLen < q.SaltLen || p.KeyLen < q.KeyLen
}

// Hasher hashes and verifies passwords. It bounds how many argon2
// computations run at once, so that a flood of logins queues (and times out
// through its context) instead of exhausting memory: at most maxConcurrent
// computations of Params.Memory KiB each are in flight.
//
// A Hasher is safe for concurrent use, provided its random source is
// (crypto/rand.Reader is).
type Hasher struct {
	p    Params
	sem  chan struct{}
	rand io.Reader
}

// NewHasher returns a Hasher with parameters p that runs at most
// maxConcurrent argon2 computations at once. rand supplies salts; nil means
// crypto/rand.Reader. NewHasher returns an error if p is below DefaultParams
// (OWASP's minimum) in any field, above the Max* limits, or if maxConcurrent
// is less than 1.
func NewHasher(p Params, maxConcurrent int, rand io.Reader) (*Hasher, error) {
	if err := p.check(); err != nil {
		return nil, fmt.Errorf("password: parameters: %w", err)
	}
	if maxConcurrent < 1 {
		return nil, fmt.Errorf("password: maxConcurrent %d, want at least 1", maxConcurrent)
	}
	if rand == nil {
		rand = cryptorand.Reader
	}
	return &Hasher{p: p, sem: make(chan struct{}, maxConcurrent), rand: rand}, nil
}

// Params returns h's parameters.
func (h *Hasher) Params() Params { return h.p }

// acquire takes a slot of the semaphore, or returns an errs.Unavailable
// error wrapping ctx.Err() if ctx ends first.
func (h *Hasher) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return errs.Wrap(errs.Unavailable, err, "too many password checks in progress, try again later")
	}
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return errs.Wrap(errs.Unavailable, ctx.Err(), "too many password checks in progress, try again later")
	}
}

func (h *Hasher) release() { <-h.sem }

// Hash returns the PHC string of password under h's parameters and a fresh
// random salt. It waits for a free slot; if ctx ends first it returns an
// error with code errs.Unavailable. Hash does not apply the policy; call
// Validate first for new passwords.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, h.p.SaltLen)
	if _, err := io.ReadFull(h.rand, salt); err != nil {
		return "", fmt.Errorf("password: read salt: %w", err)
	}
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	key := argon2.IDKey([]byte(password), salt, h.p.Time, h.p.Memory, h.p.Threads, h.p.KeyLen)
	return encodePHC(h.p, salt, key), nil
}

// Verify reports whether password matches the PHC string phc, comparing the
// derived keys in constant time. needsRehash is true only when ok is true and
// phc's parameters are weaker than h's in any field; the caller should then
// store a fresh Hash of password.
//
// A mismatch is ok == false with a nil error. Verify returns an error if phc
// is malformed, or if its parameters exceed the Max* limits (so a stored
// string cannot be used to exhaust memory or CPU); and an error with code
// errs.Unavailable if ctx ends while waiting for a free slot.
func (h *Hasher) Verify(ctx context.Context, password, phc string) (ok, needsRehash bool, err error) {
	p, salt, key, err := ParsePHC(phc)
	if err != nil {
		return false, false, err
	}
	if err := checkVerifiable(p); err != nil {
		return false, false, fmt.Errorf("password: refusing stored hash: %w", err)
	}
	if err := h.acquire(ctx); err != nil {
		return false, false, err
	}
	defer h.release()
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	if subtle.ConstantTimeCompare(got, key) != 1 {
		return false, false, nil
	}
	return true, p.weaker(h.p), nil
}

// Dummy performs one argon2 computation under h's parameters and discards
// it, so that a login for an unknown account takes as long as a real one. It
// takes a slot like Hash and Verify, and returns early, without computing, if
// ctx ends while waiting for one; so does a real Verify.
func (h *Hasher) Dummy(ctx context.Context) {
	if h.acquire(ctx) != nil {
		return
	}
	defer h.release()
	var salt [MaxSaltLen]byte
	argon2.IDKey(nil, salt[:h.p.SaltLen], h.p.Time, h.p.Memory, h.p.Threads, h.p.KeyLen)
}

// Validate checks a new password against the policy (see Check), with
// context the email address, mobile number and other things the password
// must not be built from. It returns nil if the password is acceptable,
// and otherwise an *errs.Error with code errs.Invalid, field "password" and
// a message, safe to show the user and never containing the password,
// that says what is wrong and how to do better (Check's feedback).
func Validate(password string, context ...string) error {
	v := Check(password, context...)
	if v.Acceptable {
		return nil
	}
	return errs.Field(errs.Invalid, "password", "%s", strings.Join(v.Feedback, " "))
}

// b64 returns the PHC encoding: standard alphabet, no padding, and (when
// decoding) no stray trailing bits, so every hash has one encoding.
func b64() *base64.Encoding { return base64.RawStdEncoding.Strict() }

// encodePHC returns the PHC string for p, salt and key. p.SaltLen and
// p.KeyLen are ignored.
func encodePHC(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads,
		b64().EncodeToString(salt), b64().EncodeToString(key))
}

// errPHC is the cause of every ParsePHC error. Messages never include the
// input, which holds a password hash.
var errPHC = errors.New("malformed argon2id PHC string")

// ParsePHC parses an argon2id PHC string in the reference implementation's
// canonical form, "$argon2id$v=19$m=<m>,t=<t>,p=<p>$<salt>$<key>", and
// returns its parameters (with SaltLen and KeyLen set from the decoded
// lengths), salt and key. It returns an error for anything else, including
// other argon2 variants or versions, parameters in another order, numbers
// with signs or leading zeros, padded or non-canonical base64, and
// parameters that argon2 itself forbids (t or p of 0, m below 8*p, a salt
// shorter than 8 bytes, a key shorter than 4). It never panics.
func ParsePHC(s string) (p Params, salt, key []byte, err error) {
	fail := func(what string) (Params, []byte, []byte, error) {
		return Params{}, nil, nil, fmt.Errorf("password: %w: %s", errPHC, what)
	}
	if len(s) > maxPHCLen {
		return fail("too long")
	}
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return fail("wrong number of fields")
	}
	if parts[1] != "argon2id" {
		return fail("not argon2id")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return fail("unsupported version")
	}
	kv := strings.Split(parts[3], ",")
	if len(kv) != 3 {
		return fail("want parameters m, t, p")
	}
	var vals [3]uint64
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(kv[i], name+"=")
		if !ok {
			return fail("want parameters m, t, p")
		}
		bits := 32
		if name == "p" {
			bits = 8
		}
		n, ok := parseDecimal(v, bits)
		if !ok {
			return fail("bad value for " + name)
		}
		vals[i] = n
	}
	p = Params{Memory: uint32(vals[0]), Time: uint32(vals[1]), Threads: uint8(vals[2])}
	if p.Time < 1 || p.Threads < 1 || uint64(p.Memory) < 8*uint64(p.Threads) {
		return fail("parameters out of range")
	}
	if salt, err = b64().DecodeString(parts[4]); err != nil {
		return fail("bad salt encoding")
	}
	if key, err = b64().DecodeString(parts[5]); err != nil {
		return fail("bad key encoding")
	}
	if len(salt) < 8 || len(key) < 4 {
		return fail("salt or key too short")
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	return p, salt, key, nil
}

// parseDecimal parses a canonical unsigned decimal: digits only, no leading
// zeros, fitting in bits.
func parseDecimal(s string, bits int) (uint64, bool) {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, bits)
	return n, err == nil
}
