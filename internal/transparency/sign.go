package transparency

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"

	"github.com/nitronet/nitronet/internal/auditchain"
	"github.com/nitronet/nitronet/internal/controller"
	"github.com/nitronet/nitronet/internal/errs"
)

// Alg is the only signature algorithm of the signed file format.
const Alg = "ed25519"

// MaxFileSize is the largest signed file Verify accepts, in bytes.
const MaxFileSize = 1 << 20

// envelope is the signed file. See Sign for the format.
type envelope struct {
	Alg       string `json:"alg"`
	PublicKey string `json:"public_key"`
	Report    string `json:"report"`
	Signature string `json:"signature"`
}

// Sign returns r as a signed file, signed with priv.
//
// # Signed file format
//
// The file is a UTF-8 JSON object with exactly these four string members:
//
//	{
//	  "alg":        "ed25519",
//	  "public_key": "<standard base64 of the 32-byte Ed25519 public key>",
//	  "report":     "<the report, as compact JSON text>",
//	  "signature":  "<standard base64 of the 64-byte Ed25519 signature>"
//	}
//
// The signature is a pure Ed25519 (RFC 8032) signature over the UTF-8 bytes
// of the decoded "report" string, exactly as they are, so no JSON
// canonicalisation is needed to verify: any JSON parser plus any Ed25519
// implementation will do (decode the string, verify its bytes, then parse
// them as JSON). The report's own "format" member is ReportFormat, which
// binds the signature to this schema (Verify also accepts reports of the
// earlier ReportFormatV2 and ReportFormatV1). The embedded public key is a
// convenience; a verifier must compare it with a key obtained out of band
// (see Verify).
//
// Sign sets r.Format to ReportFormat. It returns an *errs.Error with code
// Invalid if priv is not an Ed25519 private key, r.Period is not a valid
// period or r.AuditHead is not a checkpoint's text form.
func Sign(r Report, priv ed25519.PrivateKey) ([]byte, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, errs.E(errs.Invalid, "signing key is not an Ed25519 private key")
	}
	if _, err := ParsePeriod(r.Period); err != nil {
		return nil, err
	}
	if _, err := auditchain.ParseCheckpoint(r.AuditHead); err != nil {
		return nil, errs.Wrap(errs.Invalid, err, "the report's audit head is missing or malformed")
	}
	r.Format = ReportFormat
	body, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("marshal report: %w", err)
	}
	env := envelope{
		Alg:       Alg,
		PublicKey: base64.StdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey)),
		Report:    string(body),
		Signature: base64.StdEncoding.EncodeToString(ed25519.Sign(priv, body)),
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(env); err != nil {
		return nil, fmt.Errorf("marshal signed report: %w", err)
	}
	return buf.Bytes(), nil
}

// SelfAssertedError is the error Verify returns, together with the report,
// when no trusted key was given and the signature is valid under the key
// embedded in the file. It means only that the file is intact and was signed
// by whoever holds PublicKey, not that this is the operator's key. Callers
// that accept such reports must show PublicKey to the reader for comparison
// with a published one.
//
// It unwraps to an *errs.Error with code Unauthenticated, so callers that
// treat any error as failure fail safe.
type SelfAssertedError struct {
	PublicKey ed25519.PublicKey
}

func (e *SelfAssertedError) Error() string {
	return "signature is valid but self-asserted: made with embedded key " + EncodePublicKey(e.PublicKey) + ", not checked against a trusted key"
}

// Unwrap returns the domain error for a self-asserted signature.
func (e *SelfAssertedError) Unwrap() error {
	return errs.E(errs.Unauthenticated, "report signature is self-asserted; no trusted key was given")
}

// Verify checks a file written by Sign and returns the report in it.
//
// With a non-nil trusted key, the file's embedded key must equal trusted and
// the signature must verify under it; on success the error is nil.
//
// With a nil trusted key, the signature is checked against the key embedded
// in the file. If it verifies, Verify returns the report and a
// *SelfAssertedError: the report is intact but anyone could have signed it.
//
// Every other failure returns a zero Report and an *errs.Error: TooLarge for
// files over MaxFileSize; Invalid for malformed JSON, unknown members,
// trailing data, another algorithm, bad key or signature encodings,
// a trusted key of the wrong size, or a signed report that follows neither
// ReportFormat (with a well-formed audit head), ReportFormatV2 nor
// ReportFormatV1; Unauthenticated for a key other than trusted or a signature
// that does not verify (including one over a missing, empty report).
// Verify never panics, whatever file holds.
func Verify(file []byte, trusted ed25519.PublicKey) (Report, error) {
	if len(file) > MaxFileSize {
		return Report{}, errs.E(errs.TooLarge, "signed report is larger than %d bytes", MaxFileSize)
	}
	if trusted != nil && len(trusted) != ed25519.PublicKeySize {
		return Report{}, errs.E(errs.Invalid, "trusted key is not an Ed25519 public key")
	}
	var env envelope
	if err := decodeStrict(file, &env); err != nil {
		return Report{}, errs.Wrap(errs.Invalid, err, "signed report is not a valid envelope")
	}
	if env.Alg != Alg {
		return Report{}, errs.E(errs.Invalid, "signature algorithm %q is not %q", truncate(env.Alg, 32), Alg)
	}
	pub, err := decodeFixed(env.PublicKey, ed25519.PublicKeySize)
	if err != nil {
		return Report{}, errs.Wrap(errs.Invalid, err, "embedded public key is malformed")
	}
	sig, err := decodeFixed(env.Signature, ed25519.SignatureSize)
	if err != nil {
		return Report{}, errs.Wrap(errs.Invalid, err, "signature is malformed")
	}
	key := ed25519.PublicKey(pub)
	if trusted != nil {
		if !bytes.Equal(pub, trusted) {
			return Report{}, errs.E(errs.Unauthenticated, "report was signed by key %s, not by the trusted key", EncodePublicKey(pub))
		}
		key = trusted
	}
	body := []byte(env.Report)
	if !ed25519.Verify(key, body, sig) {
		return Report{}, errs.E(errs.Unauthenticated, "report signature does not verify")
	}
	var r Report
	if err := decodeStrict(body, &r); err != nil {
		return Report{}, errs.Wrap(errs.Invalid, err, "signed report does not follow the schema")
	}
	switch r.Format {
	case ReportFormat:
		if _, err := auditchain.ParseCheckpoint(r.AuditHead); err != nil {
			return Report{}, errs.Wrap(errs.Invalid, err, "the report's audit head is missing or malformed")
		}
	case ReportFormatV2:
		if r.AuditHead != "" {
			return Report{}, errs.E(errs.Invalid, "a %s report has no audit head", ReportFormatV2)
		}
	case ReportFormatV1:
		if r.Controller != (controller.Identity{}) || r.AuditHead != "" {
			return Report{}, errs.E(errs.Invalid, "a %s report has no controller or audit head member", ReportFormatV1)
		}
	default:
		return Report{}, errs.E(errs.Invalid, "report format %q is not %q, %q or %q", truncate(r.Format, 64), ReportFormat, ReportFormatV2, ReportFormatV1)
	}
	p, err := ParsePeriod(r.Period)
	if err != nil {
		return Report{}, err
	}
	if !r.PeriodStart.Equal(p.Start()) || !r.PeriodEnd.Equal(p.End()) {
		return Report{}, errs.E(errs.Invalid, "report period bounds do not match period %s", p)
	}
	if trusted == nil {
		return r, &SelfAssertedError{PublicKey: key}
	}
	return r, nil
}

// decodeStrict decodes exactly one JSON value from b into v, rejecting
// unknown object members and trailing data.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after JSON value")
	}
	return nil
}

func decodeFixed(s string, n int) ([]byte, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, err
	}
	if len(b) != n {
		return nil, fmt.Errorf("got %d bytes, want %d", len(b), n)
	}
	return b, nil
}

// EncodePublicKey returns pub in standard base64, the form used in signed
// files and for publishing the operator's key.
func EncodePublicKey(pub ed25519.PublicKey) string {
	return base64.StdEncoding.EncodeToString(pub)
}

// ParsePublicKey parses the form EncodePublicKey returns. It returns an
// *errs.Error with code Invalid if s is not a base64 Ed25519 public key.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := decodeFixed(s, ed25519.PublicKeySize)
	if err != nil {
		return nil, errs.Wrap(errs.Invalid, err, "not a base64 Ed25519 public key")
	}
	return ed25519.PublicKey(b), nil
}

// LoadOrCreateKey returns the report-signing key stored at path, creating it
// first if the file does not exist.
//
// The file is a PEM "PRIVATE KEY" block holding the key in PKCS #8 form, as
// `openssl genpkey -algorithm ed25519` writes it. A new key's 32-byte seed is
// read from rand (crypto/rand.Reader in production) and the file is created
// with mode 0600; an existing file must not be accessible by group or
// others, or LoadOrCreateKey returns an *errs.Error with code Precondition
// rather than use a possibly leaked key (not checked on Windows). The
// directory must exist. A nil rand returns code Invalid.
//
// Creation uses O_EXCL, so two processes never both create a key; one that
// loses the race loads the winner's key. A reader racing with the writer may
// see a partly written file and fail; retrying succeeds.
func LoadOrCreateKey(path string, rand io.Reader) (ed25519.PrivateKey, error) {
	if rand == nil {
		return nil, errs.E(errs.Invalid, "no randomness source for key creation")
	}
	key, err := loadKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(rand, seed); err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	key = ed25519.NewKeyFromSeed(seed)
	clear(seed)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode signing key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return loadKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("create signing key: %w", err)
	}
	err = pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("write signing key: %w", err)
	}
	return key, nil
}

// loadKey reads the key at path. A missing file returns an error wrapping
// fs.ErrNotExist.
func loadKey(path string) (ed25519.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open signing key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat signing key: %w", err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, errs.E(errs.Precondition, "signing key file %s has mode %04o; it must not be accessible by group or others (chmod 600)", path, fi.Mode().Perm())
	}
	data, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("signing key %s: no PEM PRIVATE KEY block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("signing key %s: %T is not an Ed25519 key", path, k)
	}
	return priv, nil
}
