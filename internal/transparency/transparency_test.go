package transparency

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/auditchain"
	"github.com/nitronet/nitronet/internal/controller"
	"github.com/nitronet/nitronet/internal/errs"
)

// seedReader returns a deterministic randomness source for tests.
func seedReader(b byte) *bytes.Reader { return bytes.NewReader(bytes.Repeat([]byte{b}, 64)) }

func testKey(t testing.TB, b byte) ed25519.PrivateKey {
	t.Helper()
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
}

func TestParsePeriod(t *testing.T) {
	tests := []struct {
		in      string
		want    Period
		wantErr bool
	}{
		{"2026H1", Period{2026, 1}, false},
		{"2026H2", Period{2026, 2}, false},
		{"1970H1", Period{1970, 1}, false},
		{"9999H2", Period{9999, 2}, false},
		{"2026H3", Period{}, true},
		{"2026H0", Period{}, true},
		{"2026Q3", Period{}, true},
		{"2026h2", Period{}, true},
		{"2026-H2", Period{}, true},
		{" 2026H2", Period{}, true},
		{"2026H2 ", Period{}, true},
		{"26H2", Period{}, true},
		{"0999H1", Period{}, true},
		{"1969H2", Period{}, true},
		{"+026H1", Period{}, true},
		{"２026H1", Period{}, true},
		{"", Period{}, true},
		{"H1", Period{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePeriod(tt.in)
			if tt.wantErr {
				if code := errs.CodeOf(err); code != errs.Invalid {
					t.Fatalf("ParsePeriod(%q) error code = %q, want %q (err %v)", tt.in, code, errs.Invalid, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePeriod(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParsePeriod(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			if s := got.String(); s != tt.in {
				t.Errorf("String() = %q, want %q", s, tt.in)
			}
		})
	}
}

func TestPeriodBounds(t *testing.T) {
	utc := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	tests := []struct {
		p          Period
		start, end time.Time
		next       Period
	}{
		{Period{2026, 1}, utc(2026, 1, 1), utc(2026, 7, 1), Period{2026, 2}},
		{Period{2026, 2}, utc(2026, 7, 1), utc(2027, 1, 1), Period{2027, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.p.String(), func(t *testing.T) {
			if got := tt.p.Start(); !got.Equal(tt.start) {
				t.Errorf("Start() = %v, want %v", got, tt.start)
			}
			if got := tt.p.End(); !got.Equal(tt.end) {
				t.Errorf("End() = %v, want %v", got, tt.end)
			}
			if got := tt.p.Next(); got != tt.next {
				t.Errorf("Next() = %v, want %v", got, tt.next)
			}
			if !tt.p.Contains(tt.start) {
				t.Errorf("Contains(Start) = false, want true")
			}
			if tt.p.Contains(tt.end) {
				t.Errorf("Contains(End) = true, want false")
			}
			if !tt.p.Contains(tt.end.Add(-time.Nanosecond)) {
				t.Errorf("Contains(End-1ns) = false, want true")
			}
			if got := PeriodOf(tt.start); got != tt.p {
				t.Errorf("PeriodOf(Start) = %v, want %v", got, tt.p)
			}
			if got := PeriodOf(tt.end.Add(-time.Second)); got != tt.p {
				t.Errorf("PeriodOf(End-1s) = %v, want %v", got, tt.p)
			}
		})
	}
}

func sampleDisclosures() []Disclosure {
	at := func(m time.Month, d int) time.Time { return time.Date(2026, m, d, 12, 0, 0, 0, time.UTC) }
	return []Disclosure{
		{Reference: "A-1", Authority: "Court A", Jurisdiction: "DE", LegalBasis: "x", ReceivedAt: at(1, 5), Type: TypeCourtOrder, Decision: DecisionComplied, CategoriesDisclosed: []string{"account.email", "account.email", "usage.sessions"}, AccountsAffected: 1},
		{Reference: "A-2", Authority: "Police B", Jurisdiction: "DE", LegalBasis: "y", ReceivedAt: at(3, 1), Type: TypeSubpoena, Decision: DecisionRefused},
		{Reference: "A-3", Authority: "Agency C", Jurisdiction: " US ", LegalBasis: "z", ReceivedAt: at(6, 30), Type: " Court-Order ", Decision: DecisionPartly, CategoriesDisclosed: []string{"Account.Email"}, AccountsAffected: 2},
		{Reference: "A-4", Authority: "Agency C", Jurisdiction: "US", LegalBasis: "z", ReceivedAt: at(5, 2), Type: TypePreservation, Decision: DecisionContested, AccountsAffected: -5},
		{Reference: "A-5", Authority: "Agency D", Jurisdiction: "", LegalBasis: "z", ReceivedAt: at(2, 2), Type: "", Decision: ""},
		// Outside 2026H1: must not be counted.
		{Reference: "B-1", Authority: "Court A", Jurisdiction: "DE", LegalBasis: "x", ReceivedAt: time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), Type: TypeEmergency, Decision: DecisionComplied, AccountsAffected: 9},
		{Reference: "B-2", Authority: "Court A", Jurisdiction: "DE", LegalBasis: "x", ReceivedAt: time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC), Type: TypeEmergency, Decision: DecisionComplied, AccountsAffected: 9},
	}
}

func TestBuild(t *testing.T) {
	p := Period{2026, 1}
	now := time.Date(2026, 7, 3, 10, 0, 0, 123, time.FixedZone("X", 3600))
	r := Build(p, sampleDisclosures(), now, "  No gag orders received.  ")
	want := Report{
		Format:           ReportFormat,
		Period:           "2026H1",
		PeriodStart:      p.Start(),
		PeriodEnd:        p.End(),
		GeneratedAt:      time.Date(2026, 7, 3, 9, 0, 0, 0, time.UTC),
		Totals:           Totals{Requests: 5, WithDataDisclosed: 2, NoDataDisclosed: 3},
		ByType:           map[string]int{"court-order": 2, "subpoena": 1, "preservation": 1, Unspecified: 1},
		ByJurisdiction:   map[string]int{"DE": 2, "US": 2, Unspecified: 1},
		ByOutcome:        map[string]int{"complied": 1, "refused": 1, "partly": 1, "contested": 1, Unspecified: 1},
		ByCategory:       map[string]int{"account.email": 2, "usage.sessions": 1},
		AccountsAffected: 3,
		Canary: Canary{
			Statement:  "No gag orders received.",
			NextUpdate: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
		},
	}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("Build =\n%+v\nwant\n%+v", r, want)
	}
}

func TestBuildEmpty(t *testing.T) {
	r := Build(Period{2026, 2}, nil, time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC), "")
	if r.Totals.Requests != 0 || r.ByType == nil || r.ByJurisdiction == nil || r.ByOutcome == nil || r.ByCategory == nil {
		t.Errorf("Build(empty) = %+v, want zero totals and non-nil maps", r)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("null")) {
		t.Errorf("empty report JSON = %s, want no nulls", b)
	}
}

func TestBuildLeaksNoIdentifiers(t *testing.T) {
	b, err := json.Marshal(Build(Period{2026, 1}, sampleDisclosures(), time.Now(), "canary"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"A-1", "Court A", "Police B", "Agency C"} {
		if bytes.Contains(b, []byte(s)) {
			t.Errorf("report JSON contains %q, want only aggregates", s)
		}
	}
}

func TestDisclosureValidate(t *testing.T) {
	ok := sampleDisclosures()[0]
	tests := []struct {
		name   string
		modify func(*Disclosure)
		valid  bool
	}{
		{"valid", func(*Disclosure) {}, true},
		{"no reference", func(d *Disclosure) { d.Reference = " " }, false},
		{"no authority", func(d *Disclosure) { d.Authority = "" }, false},
		{"no jurisdiction", func(d *Disclosure) { d.Jurisdiction = "" }, false},
		{"no basis", func(d *Disclosure) { d.LegalBasis = "" }, false},
		{"no type", func(d *Disclosure) { d.Type = "" }, false},
		{"long field", func(d *Disclosure) { d.Authority = strings.Repeat("a", MaxFieldLen+1) }, false},
		{"no time", func(d *Disclosure) { d.ReceivedAt = time.Time{} }, false},
		{"unknown decision", func(d *Disclosure) { d.Decision = "maybe" }, false},
		{"refused with data", func(d *Disclosure) { d.Decision = DecisionRefused }, false},
		{"refused without data", func(d *Disclosure) {
			d.Decision, d.CategoriesDisclosed, d.AccountsAffected = DecisionRefused, nil, 0
		}, true},
		{"negative accounts", func(d *Disclosure) { d.AccountsAffected = -1 }, false},
		{"empty category", func(d *Disclosure) { d.CategoriesDisclosed = []string{""} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := ok
			tt.modify(&d)
			err := d.Validate()
			if tt.valid && err != nil {
				t.Errorf("Validate() = %v, want nil", err)
			}
			if !tt.valid && errs.CodeOf(err) != errs.Invalid {
				t.Errorf("Validate() = %v, want code %q", err, errs.Invalid)
			}
		})
	}
}

func signedSample(t testing.TB) ([]byte, Report, ed25519.PrivateKey) {
	t.Helper()
	priv := testKey(t, 1)
	r := Build(Period{2026, 1}, sampleDisclosures(), time.Date(2026, 7, 3, 10, 0, 0, 0, time.UTC), "No secret orders. <b>&</b>")
	r.Controller = controller.Identity{Name: "Example VPN GmbH", Address: "1 Example Street, Berlin", Email: "privacy@example.org",
		DPO: controller.DPO{Name: "Dana Officer", Email: "dpo@example.org"}}
	r.AuditHead = sampleHead
	file, err := Sign(r, priv)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	r.Format = ReportFormat
	return file, r, priv
}

// sampleHead is an audit head in its text form.
const sampleHead = "1742:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

// TestAuditHeadInSignedReport: the audit head is inside the signed bytes,
// so changing it breaks the signature; a report of format 3 must carry a
// well-formed one, and Sign refuses to make one without.
func TestAuditHeadInSignedReport(t *testing.T) {
	file, r, priv := signedSample(t)
	pub := priv.Public().(ed25519.PublicKey)
	if !strings.Contains(string(file), `\"audit_head\":\"`+sampleHead+`\"`) {
		t.Fatalf("signed file lacks the audit head: %s", file)
	}
	changed := rewrite(t, file, func(e *envelope) {
		e.Report = strings.Replace(e.Report, sampleHead, "1743"+sampleHead[4:], 1)
	})
	if _, err := Verify(changed, pub); errs.CodeOf(err) != errs.Unauthenticated {
		t.Errorf("Verify(audit head changed) = %v, want Unauthenticated", err)
	}
	for _, head := range []string{"", "1742", "1742:abc", "x:" + sampleHead[5:]} {
		r.AuditHead = head
		if _, err := Sign(r, priv); errs.CodeOf(err) != errs.Invalid {
			t.Errorf("Sign(audit head %q) = %v, want Invalid", head, err)
		}
	}
	r.AuditHead = "0:"
	if _, err := Sign(r, priv); err != nil {
		t.Errorf("Sign(audit head of an empty log) = %v, want nil", err)
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	file, want, priv := signedSample(t)
	pub := priv.Public().(ed25519.PublicKey)

	got, err := Verify(file, pub)
	if err != nil {
		t.Fatalf("Verify(trusted): %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Verify = %+v, want %+v", got, want)
	}

	got, err = Verify(file, nil)
	var sa *SelfAssertedError
	if !errors.As(err, &sa) {
		t.Fatalf("Verify(nil) error = %v, want *SelfAssertedError", err)
	}
	if !bytes.Equal(sa.PublicKey, pub) {
		t.Errorf("self-asserted key = %x, want %x", sa.PublicKey, pub)
	}
	if code := errs.CodeOf(err); code != errs.Unauthenticated {
		t.Errorf("self-asserted code = %q, want %q", code, errs.Unauthenticated)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Verify(nil) report = %+v, want %+v", got, want)
	}
}

func TestSignedFileIsIndependentlyVerifiable(t *testing.T) {
	// A verifier in another language decodes the JSON, base64-decodes key
	// and signature, and verifies the report string's bytes. Do exactly
	// that with generic JSON.
	file, _, priv := signedSample(t)
	var m map[string]any
	if err := json.Unmarshal(file, &m); err != nil {
		t.Fatal(err)
	}
	if len(m) != 4 || m["alg"] != "ed25519" {
		t.Fatalf("envelope = %v, want 4 members with alg ed25519", m)
	}
	sig, _ := base64.StdEncoding.DecodeString(m["signature"].(string))
	pub, _ := base64.StdEncoding.DecodeString(m["public_key"].(string))
	body := []byte(m["report"].(string))
	if !ed25519.Verify(priv.Public().(ed25519.PublicKey), body, sig) || !bytes.Equal(pub, priv.Public().(ed25519.PublicKey)) {
		t.Errorf("generic verification failed")
	}
	var rep map[string]any
	if err := json.Unmarshal(body, &rep); err != nil || rep["format"] != ReportFormat {
		t.Errorf("report body format = %v (err %v), want %q", rep["format"], err, ReportFormat)
	}
}

// readFixture reads testdata/NAME.json, a report signed by an earlier
// release, and the public key in testdata/NAME.pub.
func readFixture(t *testing.T, name string) ([]byte, ed25519.PublicKey) {
	t.Helper()
	file, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	pubText, err := os.ReadFile(filepath.Join("testdata", name+".pub"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ParsePublicKey(strings.TrimSpace(string(pubText)))
	if err != nil {
		t.Fatal(err)
	}
	return file, pub
}

// TestVerifyFormat1: a report signed before the controller was added (a
// file written by the earlier release, kept in testdata) still verifies.
func TestVerifyFormat1(t *testing.T) {
	file, pub := readFixture(t, "report-v1")
	r, err := Verify(file, pub)
	if err != nil {
		t.Fatalf("Verify(format 1 report) = %v, want nil", err)
	}
	if r.Format != ReportFormatV1 || r.Period != "2025H2" || r.Totals.Requests != 1 || r.Controller != (controller.Identity{}) || r.AuditHead != "" {
		t.Errorf("format 1 report = %+v, want format %s, period 2025H2, 1 request, no controller, no audit head", r, ReportFormatV1)
	}
}

// TestVerifyFormat2: a report signed with the controller but before the
// audit head was added (a file written by the earlier release, kept in
// testdata) still verifies, and has no audit head.
func TestVerifyFormat2(t *testing.T) {
	file, pub := readFixture(t, "report-v2")
	r, err := Verify(file, pub)
	if err != nil {
		t.Fatalf("Verify(format 2 report) = %v, want nil", err)
	}
	if r.Format != ReportFormatV2 || r.Period != "2026H1" || r.Controller.Name != "Example VPN GmbH" || r.AuditHead != "" {
		t.Errorf("format 2 report = %+v, want format %s, period 2026H1, the controller, no audit head", r, ReportFormatV2)
	}
}

// TestControllerInSignedReport: the controller is inside the signed bytes,
// so changing it breaks the signature.
func TestControllerInSignedReport(t *testing.T) {
	file, r, priv := signedSample(t)
	if !strings.Contains(string(file), `\"controller\":{\"name\":\"Example VPN GmbH\"`) {
		t.Fatalf("signed file lacks the controller: %s", file)
	}
	changed := rewrite(t, file, func(e *envelope) {
		e.Report = strings.Replace(e.Report, r.Controller.Name, "Someone Else Ltd", 1)
	})
	if _, err := Verify(changed, priv.Public().(ed25519.PublicKey)); errs.CodeOf(err) != errs.Unauthenticated {
		t.Errorf("Verify(controller changed) = %v, want Unauthenticated", err)
	}
}

// rewrite decodes a signed file, applies f to the envelope and re-encodes.
func rewrite(t *testing.T, file []byte, f func(*envelope)) []byte {
	t.Helper()
	var env envelope
	if err := json.Unmarshal(file, &env); err != nil {
		t.Fatal(err)
	}
	f(&env)
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerifyTamper(t *testing.T) {
	file, r, priv := signedSample(t)
	pub := priv.Public().(ed25519.PublicKey)
	other := testKey(t, 2)
	otherPub := other.Public().(ed25519.PublicKey)

	// A forger re-signs a changed report with their own key.
	forged := r
	forged.Totals.Requests = 0
	forgedFile, err := Sign(forged, other)
	if err != nil {
		t.Fatal(err)
	}
	// A forger swaps in their own key but keeps the original signature.
	keySwapped := rewrite(t, file, func(e *envelope) { e.PublicKey = base64.StdEncoding.EncodeToString(otherPub) })
	// Body that is signed but is not a report of this schema.
	wrongSchema := func(body string) []byte {
		b, _ := json.Marshal(envelope{Alg: Alg, PublicKey: EncodePublicKey(pub), Report: body,
			Signature: base64.StdEncoding.EncodeToString(ed25519.Sign(priv, []byte(body)))})
		return b
	}
	flipped := rewrite(t, file, func(e *envelope) {
		s, _ := base64.StdEncoding.DecodeString(e.Signature)
		s[10] ^= 1
		e.Signature = base64.StdEncoding.EncodeToString(s)
	})

	tests := []struct {
		name    string
		file    []byte
		trusted ed25519.PublicKey
		want    errs.Code
	}{
		{"report changed", rewrite(t, file, func(e *envelope) {
			e.Report = strings.Replace(e.Report, `"requests":5`, `"requests":4`, 1)
		}), pub, errs.Unauthenticated},
		{"report changed self-asserted", rewrite(t, file, func(e *envelope) {
			e.Report = strings.Replace(e.Report, `"requests":5`, `"requests":4`, 1)
		}), nil, errs.Unauthenticated},
		{"report whitespace added", rewrite(t, file, func(e *envelope) { e.Report += " " }), pub, errs.Unauthenticated},
		{"canary removed", rewrite(t, file, func(e *envelope) {
			e.Report = strings.Replace(e.Report, "No secret orders.", "", 1)
		}), pub, errs.Unauthenticated},
		{"signature flipped", flipped, pub, errs.Unauthenticated},
		{"forged with other key", forgedFile, pub, errs.Unauthenticated},
		{"key swapped", keySwapped, pub, errs.Unauthenticated},
		{"key swapped self-asserted", keySwapped, nil, errs.Unauthenticated},
		{"wrong trusted key", file, otherPub, errs.Unauthenticated},
		{"short trusted key", file, pub[:31], errs.Invalid},
		{"alg changed", rewrite(t, file, func(e *envelope) { e.Alg = "none" }), pub, errs.Invalid},
		{"signature not base64", rewrite(t, file, func(e *envelope) { e.Signature = "!!" }), pub, errs.Invalid},
		{"signature truncated", rewrite(t, file, func(e *envelope) { e.Signature = e.Signature[:40] }), pub, errs.Invalid},
		{"signature missing", rewrite(t, file, func(e *envelope) { e.Signature = "" }), pub, errs.Invalid},
		{"key missing", rewrite(t, file, func(e *envelope) { e.PublicKey = "" }), pub, errs.Invalid},
		{"report missing", rewrite(t, file, func(e *envelope) { e.Report = "" }), pub, errs.Unauthenticated},
		{"unknown member", bytes.Replace(file, []byte(`"alg"`), []byte(`"x":1,"alg"`), 1), pub, errs.Invalid},
		{"trailing data", append(append([]byte{}, file...), []byte(`{}`)...), pub, errs.Invalid},
		{"not json", []byte("hello"), pub, errs.Invalid},
		{"empty", nil, pub, errs.Invalid},
		{"json array", []byte("[]"), pub, errs.Invalid},
		{"too large", bytes.Repeat([]byte(" "), MaxFileSize+1), pub, errs.TooLarge},
		{"signed non-json", wrongSchema("hello"), pub, errs.Invalid},
		{"signed other format", wrongSchema(`{"format":"other/1","period":"2026H1"}`), pub, errs.Invalid},
		{"signed unknown member", wrongSchema(`{"format":"` + ReportFormat + `","period":"2026H1","extra":1}`), pub, errs.Invalid},
		{"signed bad period", wrongSchema(`{"format":"` + ReportFormat + `","period":"2026H3"}`), pub, errs.Invalid},
		{"signed v1 with controller", wrongSchema(`{"format":"` + ReportFormatV1 + `","period":"2026H1","period_start":"2026-01-01T00:00:00Z","period_end":"2026-07-01T00:00:00Z","controller":{"name":"X"}}`), pub, errs.Invalid},
		{"signed wrong bounds", wrongSchema(`{"format":"` + ReportFormat + `","period":"2026H1"}`), pub, errs.Invalid},
		{"signed wrong bounds", wrongSchema(`{"format":"` + ReportFormat + `","period":"2026H1","audit_head":"0:"}`), pub, errs.Invalid},
		{"signed without audit head", wrongSchema(`{"format":"` + ReportFormat + `","period":"2026H1","period_start":"2026-01-01T00:00:00Z","period_end":"2026-07-01T00:00:00Z"}`), pub, errs.Invalid},
		{"signed bad audit head", wrongSchema(`{"format":"` + ReportFormat + `","period":"2026H1","period_start":"2026-01-01T00:00:00Z","period_end":"2026-07-01T00:00:00Z","audit_head":"12:00"}`), pub, errs.Invalid},
		{"signed v1 with audit head", wrongSchema(`{"format":"` + ReportFormatV1 + `","period":"2026H1","period_start":"2026-01-01T00:00:00Z","period_end":"2026-07-01T00:00:00Z","audit_head":"0:"}`), pub, errs.Invalid},
		{"signed v2 with audit head", wrongSchema(`{"format":"` + ReportFormatV2 + `","period":"2026H1","period_start":"2026-01-01T00:00:00Z","period_end":"2026-07-01T00:00:00Z","audit_head":"0:"}`), pub, errs.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Verify(tt.file, tt.trusted)
			var sa *SelfAssertedError
			if errors.As(err, &sa) {
				t.Fatalf("Verify error = %v, want a hard failure with code %q", err, tt.want)
			}
			if code := errs.CodeOf(err); code != tt.want {
				t.Fatalf("Verify error = %v (code %q), want code %q", err, code, tt.want)
			}
			if !reflect.DeepEqual(got, Report{}) {
				t.Errorf("Verify report = %+v, want zero Report on failure", got)
			}
		})
	}
}

func TestSignRejects(t *testing.T) {
	r := Build(Period{2026, 1}, nil, time.Now(), "")
	r.AuditHead = "0:"
	if _, err := Sign(r, ed25519.PrivateKey(make([]byte, 10))); errs.CodeOf(err) != errs.Invalid {
		t.Errorf("Sign(short key) = %v, want code %q", err, errs.Invalid)
	}
	r.Period = "soon"
	if _, err := Sign(r, testKey(t, 1)); errs.CodeOf(err) != errs.Invalid {
		t.Errorf("Sign(bad period) = %v, want code %q", err, errs.Invalid)
	}
}

func TestPublicKeyEncoding(t *testing.T) {
	pub := testKey(t, 3).Public().(ed25519.PublicKey)
	got, err := ParsePublicKey(EncodePublicKey(pub))
	if err != nil || !bytes.Equal(got, pub) {
		t.Errorf("ParsePublicKey(EncodePublicKey(k)) = %x, %v; want %x, nil", got, err, pub)
	}
	for _, s := range []string{"", "abc", base64.StdEncoding.EncodeToString(make([]byte, 31))} {
		if _, err := ParsePublicKey(s); errs.CodeOf(err) != errs.Invalid {
			t.Errorf("ParsePublicKey(%q) error = %v, want code %q", s, err, errs.Invalid)
		}
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "report.key")

	k1, err := LoadOrCreateKey(path, seedReader(7))
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if want := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32)); !bytes.Equal(k1, want) {
		t.Errorf("created key is not derived from the injected randomness")
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("key file mode = %04o, want 0600", got)
	}
	data, _ := os.ReadFile(path)
	if !bytes.HasPrefix(data, []byte("-----BEGIN PRIVATE KEY-----\n")) {
		t.Errorf("key file = %q, want a PEM PRIVATE KEY block", data)
	}

	// Loading again returns the same key and reads no randomness.
	k2, err := LoadOrCreateKey(path, bytes.NewReader(nil))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if !bytes.Equal(k1, k2) {
		t.Errorf("loaded key differs from created key")
	}

	t.Run("group readable refused", func(t *testing.T) {
		if err := os.Chmod(path, 0o640); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(path, 0o600)
		if _, err := LoadOrCreateKey(path, seedReader(7)); errs.CodeOf(err) != errs.Precondition {
			t.Errorf("LoadOrCreateKey(0640 file) = %v, want code %q", err, errs.Precondition)
		}
	})
	t.Run("corrupt file not replaced", func(t *testing.T) {
		bad := filepath.Join(dir, "bad.key")
		if err := os.WriteFile(bad, []byte("garbage"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateKey(bad, seedReader(7)); err == nil {
			t.Errorf("LoadOrCreateKey(corrupt) = nil error, want an error")
		}
		if data, _ := os.ReadFile(bad); string(data) != "garbage" {
			t.Errorf("corrupt key file was overwritten")
		}
	})
	t.Run("nil rand", func(t *testing.T) {
		if _, err := LoadOrCreateKey(filepath.Join(dir, "x.key"), nil); errs.CodeOf(err) != errs.Invalid {
			t.Errorf("LoadOrCreateKey(nil rand) = %v, want code %q", err, errs.Invalid)
		}
	})
	t.Run("short rand leaves no file", func(t *testing.T) {
		p := filepath.Join(dir, "short.key")
		if _, err := LoadOrCreateKey(p, bytes.NewReader([]byte{1, 2})); err == nil {
			t.Errorf("LoadOrCreateKey(short rand) = nil error, want an error")
		}
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("key file exists after failure (stat err %v)", err)
		}
	})
	t.Run("missing dir", func(t *testing.T) {
		if _, err := LoadOrCreateKey(filepath.Join(dir, "nope", "k"), seedReader(1)); err == nil {
			t.Errorf("LoadOrCreateKey(missing dir) = nil error, want an error")
		}
	})
}

func FuzzVerify(f *testing.F) {
	priv := testKey(f, 1)
	pub := priv.Public().(ed25519.PublicKey)
	r := Build(Period{2026, 1}, sampleDisclosures(), time.Date(2026, 7, 3, 0, 0, 0, 0, time.UTC), "canary")
	r.Controller = controller.Identity{Name: "Example VPN GmbH", Email: "privacy@example.org"}
	r.AuditHead = sampleHead
	good, err := Sign(r, priv)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, true)
	f.Add(good, false)
	for _, name := range []string{"report-v1.json", "report-v2.json"} {
		if old, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(old, false)
		}
	}
	f.Add([]byte(`{"alg":"ed25519","public_key":"","report":"","signature":""}`), false)
	f.Add([]byte(`{}`), true)
	f.Add([]byte(`null`), false)
	f.Fuzz(func(t *testing.T, file []byte, useTrusted bool) {
		var trusted ed25519.PublicKey
		if useTrusted {
			trusted = pub
		}
		got, err := Verify(file, trusted)
		var sa *SelfAssertedError
		switch {
		case err == nil:
			if !useTrusted {
				t.Fatalf("Verify(nil key) returned nil error")
			}
		case errors.As(err, &sa):
			if useTrusted {
				t.Fatalf("Verify(trusted) returned %v", err)
			}
		default:
			if !reflect.DeepEqual(got, Report{}) {
				t.Fatalf("failed Verify returned non-zero report")
			}
			return
		}
		// Anything that verified must be a well-formed report.
		if _, perr := ParsePeriod(got.Period); perr != nil {
			t.Fatalf("verified report has bad period: %v", perr)
		}
		if got.Format == ReportFormat {
			if _, herr := auditchain.ParseCheckpoint(got.AuditHead); herr != nil {
				t.Fatalf("verified format 2 report has a bad audit head: %v", herr)
			}
		}
	})
}
