package server_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/acctkey"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/httpedge"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

// The tests in this file reproduce the attacks of issue 10 against the
// whole server and show that they no longer get through.

// fakeClock is a settable clock for the server.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// roomy are limits the attacks here do not reach by accident: each test
// names the budget it is about.
func roomy() httpedge.Limits {
	return httpedge.Limits{SignupPerHour: 1e6, SignupBurst: 1e4, LoginPerHour: 1e6, LoginBurst: 1e4,
		StaffPerHour: 1e6, StaffBurst: 1e4, EnrollPerHour: 1e6, EnrollBurst: 1e4,
		VerifyPerHour: 1e6, VerifyBurst: 1e4, ResetPerHour: 1e6, ResetBurst: 1e4, CheckPerHour: 1e6, CheckBurst: 1e4}
}

// from returns an HTTP client whose connections come from the loopback
// address ip (127.0.0.0/8), so that per-address budgets apart from the
// one under test stay fresh.
func from(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

const (
	strongPW  = "correct horse battery"
	strongPW2 = "sturdy walrus paints at dawn"
	strongPW3 = "mauve kettle jumps quickly"
)

var resetRE = regexp.MustCompile(`nnr_[A-Za-z0-9_-]+`)

// resetToken asks for a reset of email and returns the token emailed.
func (e *env) resetToken(email string) string {
	e.t.Helper()
	e.want("POST", "/api/v1/password-reset", "", map[string]string{"email": email}, 202)
	tok := resetRE.FindString(e.lastMessage("password-reset", email))
	if tok == "" {
		e.t.Fatal("no reset token in the email")
	}
	return tok
}

// Finding 1: reset tokens stayed valid after another was used or the
// password changed.
func TestFinding1ResetTokensRevoked(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			lim := roomy()
			e := newEnv(t, b, &lim)
			const email = "revoke@example.com"
			e.signup(email, "+447911100811")
			confirm := func(tok, pw string, status int) {
				e.want("POST", "/api/v1/password-reset/confirm", "", map[string]string{"token": tok, "password": pw}, status)
			}
			// R1 and R2: issuing R2 revokes R1; using R2 works once.
			r1, r2 := e.resetToken(email), e.resetToken(email)
			if r1 == r2 {
				t.Fatal("two reset requests gave one token")
			}
			confirm(r1, strongPW2, 410)
			confirm(r2, strongPW2, 204)
			confirm(r2, strongPW3, 410)
			// R3, then a password change: R3 no longer works.
			r3 := e.resetToken(email)
			tok := e.want("POST", "/api/v1/sessions", "", map[string]string{"email": email, "password": strongPW2}, 201)["token"].(string)
			e.want("POST", "/api/v1/me/password", tok, map[string]string{"current_password": strongPW2, "new_password": strongPW3}, 201)
			confirm(r3, strongPW, 410)
			e.want("POST", "/api/v1/sessions", "", map[string]string{"email": email, "password": strongPW3}, 201)
			// R4, then a reset with R5: R4 was revoked when R5 was issued.
			r4, r5 := e.resetToken(email), e.resetToken(email)
			confirm(r5, strongPW, 204)
			confirm(r4, strongPW2, 410)
		})
	}
}

// Finding 2: the per-email throttles keyed on the raw lower-cased
// address, while the account lookup folded width, so look-alike spellings
// had fresh budgets.
func TestFinding2ThrottlesCanonical(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	lim := roomy()
	lim.SlowFree, lim.SlowBase, lim.SlowMax = 3, time.Minute, 15*time.Minute
	lim.ResetPerHour, lim.ResetBurst = 1, 2
	e := newEnvClock(t, storetest.Backends()[0], &lim, clock.Now)
	const email = "bob@example.com"
	e.signup(email, "+447911100821")
	variants := []string{"bob@\uff45xample.com", "BOB@EXAMPLE.COM", "\uff42\uff4f\uff42\uff20\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\uff0e\uff43\uff4f\uff4d", "bob@example\u3002com"}

	// Logins: failures on one spelling slow every spelling down.
	for i := 0; i < 4; i++ {
		e.want("POST", "/api/v1/sessions", "", map[string]string{"email": email, "password": "wrong password 1"}, 401)
	}
	for i, v := range variants {
		code, hdr, body := e.callFrom(from("127.0.0."+strconv.Itoa(10+i)), "POST", "/api/v1/sessions", "", map[string]string{"email": v, "password": strongPW})
		if code != http.StatusTooManyRequests {
			t.Fatalf("login as %q with the right password after failures on %s: got %d %v, want 429", v, email, code, body)
		}
		if hdr.Get("Retry-After") != "60" {
			t.Errorf("Retry-After: got %q, want 60 (the one-minute delay)", hdr.Get("Retry-After"))
		}
	}
	// A slow-down, not a lockout: after the delay the right password works
	// (whatever the spelling).
	clock.Add(time.Minute)
	e.want("POST", "/api/v1/sessions", "", map[string]string{"email": variants[0], "password": strongPW}, 201)

	// Resets: two requests for one spelling spend the address's budget
	// for every spelling, each request from another address.
	for i := 0; i < 2; i++ {
		if code, _, _ := e.callFrom(from("127.0.1."+strconv.Itoa(i+1)), "POST", "/api/v1/password-reset", "", map[string]string{"email": email}); code != 202 {
			t.Fatalf("reset %d: got %d, want 202", i+1, code)
		}
	}
	for i, v := range variants {
		if code, _, body := e.callFrom(from("127.0.2."+strconv.Itoa(i+1)), "POST", "/api/v1/password-reset", "", map[string]string{"email": v}); code != http.StatusTooManyRequests {
			t.Fatalf("reset for %q: got %d %v, want 429 (the address's budget is spent)", v, code, body)
		}
	}
	// Another address is not affected.
	if code, _, _ := e.callFrom(from("127.0.3.1"), "POST", "/api/v1/password-reset", "", map[string]string{"email": "carol@example.com"}); code != 202 {
		t.Fatalf("reset for another address: got %d, want 202", code)
	}
}

// Finding 4: sign-up, contact changes and resets told who has an account.
func TestFinding4NoEnumeration(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			lim := roomy()
			e := newEnv(t, b, &lim)
			owner, ownerTok := e.signup("owner@example.com", "+447911100831")
			_ = owner
			testSignupAnswers(t, e.with(t))
			testContactChangeAnswers(t, e.with(t), ownerTok)
			testResetWork(t, e.with(t))
		})
	}
}

// keys returns the sorted keys of a JSON answer.
func keys(m map[string]any) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ",")
}

// queued returns how many jobs the outbound queue holds.
func (e *env) queued() int {
	e.t.Helper()
	n, err := e.srv.Store.CountOutbound(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func testSignupAnswers(t *testing.T, e *env) {
	e.drain()
	signup := func(email, mobile, pw string) (int, map[string]any, int) {
		before := e.queued()
		code, out := e.call("POST", "/api/v1/accounts", "", map[string]string{"email": email, "mobile": mobile, "password": pw})
		return code, out, e.queued() - before
	}
	newCode, newOut, newJobs := signup("fresh@example.com", "+447911100832", strongPW)
	takenCode, takenOut, takenJobs := signup("OWNER@example.com", "+447911100833", strongPW2)
	mobCode, mobOut, mobJobs := signup("fresh2@example.com", "+447911100831", strongPW2)
	for name, got := range map[string]struct {
		code int
		out  map[string]any
		jobs int
	}{"taken email": {takenCode, takenOut, takenJobs}, "taken mobile": {mobCode, mobOut, mobJobs}} {
		if got.code != newCode || keys(got.out) != keys(newOut) || got.jobs != newJobs {
			t.Errorf("%s: got %d %v (%d jobs queued), want what a new sign-up gets: %d %v (%d jobs)",
				name, got.code, got.out, got.jobs, newCode, newOut, newJobs)
		}
		if id, _ := got.out["id"].(string); !strings.HasPrefix(id, "acc_") || id == newOut["id"] {
			t.Errorf("%s: got id %q, want a fresh account-shaped id", name, id)
		}
	}
	// The owner of the taken address is told, and no account was made
	// with the prober's password.
	if msg := e.lastMessage("signup-attempt", "owner@example.com"); !strings.Contains(msg, "tried to create a Nitronet account") {
		t.Fatalf("owner's message: %q", msg)
	}
	e.want("POST", "/api/v1/sessions", "", map[string]string{"email": "owner@example.com", "password": strongPW2}, 401)
	// The taken number: the new account exists (its email is free) but
	// gets no code on the number, which stays with its owner.
	tok := e.want("POST", "/api/v1/sessions", "", map[string]string{"email": "fresh2@example.com", "password": strongPW2}, 201)["token"].(string)
	e.code("fresh2@example.com") // the email code did arrive
	e.want("POST", "/api/v1/me/verify/resend", tok, map[string]string{"channel": "mobile"}, 202)
	e.drain()
	if n := countMessages(t, e, "verify-code", "+447911100831"); n != 1 {
		t.Fatalf("codes to the owner's number: got %d, want only the owner's own sign-up code", n)
	}
	for _, guess := range []string{"000000", "123456"} {
		e.want("POST", "/api/v1/me/verify", tok, map[string]string{"channel": "mobile", "code": guess}, 401)
	}
}

func testContactChangeAnswers(t *testing.T, e *env, ownerTok string) {
	_, tok := e.signup("mover@example.com", "+447911100834")
	free := e.want("POST", "/api/v1/me/contact", tok, map[string]string{"channel": "email", "value": "moved@example.com", "password": strongPW}, 202)
	e.drain()
	before := countMessages(t, e, "contact-change-code", "owner@example.com")
	taken := e.want("POST", "/api/v1/me/contact", tok, map[string]string{"channel": "email", "value": "Owner@Example.com", "password": strongPW}, 202)
	if free["status"] != taken["status"] || keys(free) != keys(taken) {
		t.Fatalf("contact change to a taken email: got %v, want the answer a free one gets (%v)", taken, free)
	}
	mobile := e.want("POST", "/api/v1/me/contact", tok, map[string]string{"channel": "mobile", "value": "+447911100831", "password": strongPW}, 202)
	if keys(mobile) != keys(free) {
		t.Fatalf("contact change to a taken number: got %v", mobile)
	}
	e.drain()
	if n := countMessages(t, e, "contact-change-code", "owner@example.com") - before; n != 0 {
		t.Fatalf("the owner's address got %d codes, want none", n)
	}
	if n := countMessages(t, e, "contact-change-code", "+447911100831"); n != 0 {
		t.Fatalf("the owner's number got %d codes, want none", n)
	}
	// Nothing changed for either account.
	e.want("POST", "/api/v1/me/contact/verify", tok, map[string]string{"channel": "email", "code": "000000"}, 401)
	if me := e.want("GET", "/api/v1/me", ownerTok, nil, 200); me["email"] != "owner@example.com" || me["mobile"] != "+447911100831" {
		t.Fatalf("owner after the attempts: %v", me)
	}
}

// testResetWork: a reset request for an address with an account and for
// one without answer alike and do the same work in the request: one job
// queued, nothing else (the worker does the rest).
func testResetWork(t *testing.T, e *env) {
	e.drain()
	for _, email := range []string{"owner@example.com", "ghost@example.com", "OWNER@EXAMPLE.COM"} {
		before := e.queued()
		out := e.want("POST", "/api/v1/password-reset", "", map[string]string{"email": email}, 202)
		if n := e.queued() - before; n != 1 {
			t.Errorf("reset for %s: %d jobs queued, want 1", email, n)
		}
		if keys(out) != "status" {
			t.Errorf("reset for %s: answer %v", email, out)
		}
	}
}

// countMessages counts outbox messages of kind to a recipient.
func countMessages(t *testing.T, e *env, kind, to string) int {
	t.Helper()
	return strings.Count(e.allMessages(kind), "\nTo: "+maskOf(to)+"\n")
}

// Finding 5: ten wrong passwords locked the owner out, and user login,
// staff login and gateway enrolment shared one per-address budget.
func TestFinding5SlowDownNotLockout(t *testing.T) {
	// On PostgreSQL the slow-downs are the ones replicas share
	// (login_slowdowns): the contract is the same.
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { slowDownNotLockout(t, b) })
	}
}

func slowDownNotLockout(t *testing.T, b storetest.Backend) {
	clock := &fakeClock{t: time.Now()}
	lim := roomy()
	e := newEnvClock(t, b, &lim, clock.Now)
	const email = "victim@example.com"
	e.signup(email, "+447911100841")
	// The owner's app logged in before: it holds a device token.
	owner := e.want("POST", "/api/v1/sessions", "", map[string]string{"email": email, "password": strongPW}, 201)
	device, _ := owner["device"].(string)
	if !strings.HasPrefix(device, "nnd_") {
		t.Fatalf("login answer %v lacks a device token", owner)
	}

	// A stranger fails as fast as the server lets them, from many
	// addresses, for an hour.
	stranger := 0
	var lastWait time.Duration
	for end := clock.Now().Add(time.Hour); clock.Now().Before(end); {
		code, hdr, _ := e.callFrom(from("127.0.9."+strconv.Itoa(1+stranger%200)), "POST", "/api/v1/sessions", "", map[string]string{"email": email, "password": "not the password"})
		switch code {
		case 401:
			stranger++
		case 429:
			secs, err := strconv.Atoi(hdr.Get("Retry-After"))
			if err != nil || secs < 1 || time.Duration(secs)*time.Second > httpedge.DefaultSlowMax {
				t.Fatalf("Retry-After %q: want 1 s to the 15 min cap", hdr.Get("Retry-After"))
			}
			lastWait = time.Duration(secs) * time.Second
			// The owner's known device is not slowed by the stranger.
			e.want("POST", "/api/v1/sessions", "", map[string]string{"email": email, "password": strongPW, "device": device}, 201)
			clock.Add(lastWait)
		default:
			t.Fatalf("stranger's attempt: got %d", code)
		}
	}
	// 5 free, 1 s doubling to 15 min: 5 + 10 + 3 within the hour.
	if stranger > 5+10+4 {
		t.Fatalf("the stranger got %d guesses in an hour, want at most 19", stranger)
	}
	if lastWait != httpedge.DefaultSlowMax {
		t.Fatalf("the wait reached %v, want the cap %v", lastWait, httpedge.DefaultSlowMax)
	}
	// From a new device the owner waits at most the current delay, then
	// the right password works.
	code, hdr, _ := e.callFrom(nil, "POST", "/api/v1/sessions", "", map[string]string{"email": email, "password": strongPW})
	if code == 429 {
		secs, _ := strconv.Atoi(hdr.Get("Retry-After"))
		if time.Duration(secs)*time.Second > httpedge.DefaultSlowMax {
			t.Fatalf("the owner must wait %ds, over the cap", secs)
		}
		clock.Add(time.Duration(secs) * time.Second)
		e.want("POST", "/api/v1/sessions", "", map[string]string{"email": email, "password": strongPW}, 201)
	} else if code != 201 {
		t.Fatalf("owner from a new device: got %d", code)
	}
	// A forged or other account's device token gets the account's budget.
	e.want("POST", "/api/v1/sessions", "", map[string]string{"email": email, "password": "wrong again", "device": "nnd_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}, 401)
}

// Finding 6: weak passwords were accepted although the meter said "Weak";
// now the meter is the server's verdict.
func TestFinding6PasswordQuality(t *testing.T) {
	lim := roomy()
	e := newEnv(t, storetest.Backends()[0], &lim)
	out := e.want("POST", "/api/v1/accounts", "", map[string]string{"email": "weak@example.com", "mobile": "+447911100851", "password": "password1234"}, 400)
	if f := out["error"].(map[string]any)["field"]; f != "password" {
		t.Fatalf("weak sign-up: field %v, want password", f)
	}
	// The check endpoint and sign-up agree, context included.
	cases := []struct{ pw, email string }{
		{"password1234", "agree1@example.com"},
		{"P@ssw0rd2024", "agree2@example.com"},
		{"qwertyuiop12", "agree3@example.com"},
		{"zorblaxquintet!", "zorblaxquintet@example.com"},
		{"zorblaxquintet!", "agree5@example.com"},
		{strongPW2, "agree6@example.com"},
		{"Kq7#mZ2vR!", "agree7@example.com"},
	}
	for i, c := range cases {
		mobile := "+4479111008" + strconv.Itoa(60+i)
		v := e.want("POST", "/api/v1/password-check", "", map[string]string{"password": c.pw, "email": c.email, "mobile": mobile}, 200)
		acceptable, _ := v["acceptable"].(bool)
		code, _ := e.call("POST", "/api/v1/accounts", "", map[string]string{"email": c.email, "mobile": mobile, "password": c.pw})
		if acceptable != (code == 201) {
			t.Errorf("password %q for %s: the check says acceptable=%v (%v), sign-up answers %d", c.pw, c.email, acceptable, v, code)
		}
		if !acceptable {
			if fb, _ := v["feedback"].([]any); len(fb) == 0 {
				t.Errorf("password %q: refused without feedback", c.pw)
			}
		}
	}
	// Change and reset apply it too, with the account's contacts.
	_, tok := e.signup("quality@example.com", "+447911100859")
	e.want("POST", "/api/v1/me/password", tok, map[string]string{"current_password": strongPW, "new_password": "password1234"}, 400)
	e.want("POST", "/api/v1/me/password", tok, map[string]string{"current_password": strongPW, "new_password": "quality7911100859"}, 400)
	r := e.resetToken("quality@example.com")
	v := e.want("POST", "/api/v1/password-check", "", map[string]string{"password": "quality7911100859", "reset_token": r}, 200)
	if v["acceptable"] != false {
		t.Fatalf("check with the reset token: got %v, want the account's contacts as context", v)
	}
	e.want("POST", "/api/v1/password-reset/confirm", "", map[string]string{"token": r, "password": "quality7911100859"}, 400)
	// The refused password left the token usable.
	e.want("POST", "/api/v1/password-reset/confirm", "", map[string]string{"token": r, "password": strongPW3}, 204)
	// The check is never access-logged.
	if strings.Contains(e.logs.String(), "password-check") {
		t.Fatal("the password check left an access log line")
	}
}

// TestFinding2LookAlikes: every spelling that folds to an account's
// canonical address (IDNA forms, upper case, decomposed accents, full
// width, the ideographic full stop) reaches the same account, its
// uniqueness check and its login and reset budgets; characters that only
// look alike (dotless ı, dotted İ, Cyrillic letters in a Latin domain)
// never reach it, so they get no fresh budget on it.
func TestFinding2LookAlikes(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	lim := roomy()
	lim.SlowFree, lim.SlowBase, lim.SlowMax = 3, time.Minute, 15*time.Minute
	lim.ResetPerHour, lim.ResetBurst = 1, 2
	e := newEnvClock(t, storetest.Backends()[0], &lim, clock.Now)
	const email, mobile = "ida@b\u00fccher.example", "+447911100871"
	e.signup(email, mobile)
	same := []string{
		"ida@xn--bcher-kva.example",              // IDNA A-label
		"IDA@B\u00dcCHER.EXAMPLE",                // upper case
		"ida@bu\u0308cher.example",               // ü decomposed
		"\uff49\uff44\uff41@b\u00fccher.example", // full-width local part
		"ida@b\u00fccher\u3002example",           // ideographic full stop
	}
	lookAlikes := []string{
		"\u0131da@b\u00fccher.example",        // dotless ı
		"\u0130DA@B\u00dcCHER.EXAMPLE",        // dotted İ
		"ida@b\u00fccher.\u0435xample",        // Cyrillic е
		"ida@b\u00fc\u0441her.example",        // Cyrillic с
		"ida@xn--bcher-kva.\u0435x\u0430mple", // A-label with a Cyrillic TLD look-alike
	}
	login := func(c *http.Client, who, pw string) int {
		code, _, _ := e.callFrom(c, "POST", "/api/v1/sessions", "", map[string]string{"email": who, "password": pw})
		return code
	}

	// Uniqueness: a sign-up with another spelling answers as ever, but
	// makes no second account: the prober's password opens nothing and
	// the owner's opens the owner's account.
	for i, v := range same {
		mob := "+4479111009" + strconv.Itoa(10+i)
		e.want("POST", "/api/v1/accounts", "", map[string]string{"email": v, "mobile": mob, "password": strongPW2}, 201)
		if code := login(nil, v, strongPW2); code != 401 {
			t.Fatalf("sign-up as %q made an account of its own: login got %d, want 401", v, code)
		}
		if code := login(nil, v, strongPW); code != 201 {
			t.Fatalf("login as %q with the owner's password: got %d, want 201", v, code)
		}
	}
	// Sign-up with a domain that mixes scripts is refused outright.
	out := e.want("POST", "/api/v1/accounts", "", map[string]string{"email": "ida@b\u00fc\u0441her.example", "mobile": "+447911100879", "password": strongPW2}, 400)
	if f := out["error"].(map[string]any)["field"]; f != "email" {
		t.Fatalf("mixed-script sign-up: field %v, want email", f)
	}

	// Logins: failures on the canonical spelling slow every spelling down.
	for i := 0; i < 4; i++ {
		if code := login(nil, email, "wrong password 1"); code != 401 {
			t.Fatalf("failure %d: got %d, want 401", i+1, code)
		}
	}
	for i, v := range same {
		if code := login(from("127.0.4."+strconv.Itoa(1+i)), v, strongPW); code != http.StatusTooManyRequests {
			t.Fatalf("login as %q with the right password while slowed down: got %d, want 429", v, code)
		}
	}
	// Look-alikes are other (absent) accounts: the right password never
	// logs in through them, slowed down or not.
	for i, v := range lookAlikes {
		if code := login(from("127.0.5."+strconv.Itoa(1+i)), v, strongPW); code != 401 {
			t.Fatalf("login as look-alike %q: got %d, want 401", v, code)
		}
	}
	clock.Add(time.Minute)
	if code := login(nil, same[0], strongPW); code != 201 {
		t.Fatalf("after the delay: got %d, want 201", code)
	}
	for _, v := range lookAlikes {
		if code := login(nil, v, strongPW); code != 401 {
			t.Fatalf("login as look-alike %q after the delay: got %d, want 401", v, code)
		}
	}

	// Resets: the address's budget (2) is spent by two spellings and
	// refused for every other, each request from its own address.
	for i, v := range same[:2] {
		if code, _, _ := e.callFrom(from("127.0.6."+strconv.Itoa(1+i)), "POST", "/api/v1/password-reset", "", map[string]string{"email": v}); code != 202 {
			t.Fatalf("reset for %q: got %d, want 202", v, code)
		}
	}
	for i, v := range append([]string{email}, same[2:]...) {
		if code, _, _ := e.callFrom(from("127.0.7."+strconv.Itoa(1+i)), "POST", "/api/v1/password-reset", "", map[string]string{"email": v}); code != http.StatusTooManyRequests {
			t.Fatalf("reset for %q after the budget was spent: got %d, want 429", v, code)
		}
	}
	// Two reset emails went to the one owner, and none anywhere else.
	if n := countMessages(t, e, "password-reset", email); n != 2 {
		t.Fatalf("reset emails to the owner: got %d, want 2", n)
	}
}

// tracer is a store that records the names of the calls that look
// accounts up, create them, or store or queue what is sent: the work whose
// amount could tell whether a contact has an account.
type tracer struct {
	store.Store
	mu    sync.Mutex
	calls []string
}

func (t *tracer) note(name string) { t.mu.Lock(); defer t.mu.Unlock(); t.calls = append(t.calls, name) }

// take returns the calls recorded since the last take.
func (t *tracer) take() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.Join(t.calls, ",")
	t.calls = nil
	return s
}

func (t *tracer) AccountByEmailIndex(ctx context.Context, index []byte) (*store.Account, error) {
	t.note("AccountByEmailIndex")
	return t.Store.AccountByEmailIndex(ctx, index)
}

func (t *tracer) AccountByMobileIndex(ctx context.Context, index []byte) (*store.Account, error) {
	t.note("AccountByMobileIndex")
	return t.Store.AccountByMobileIndex(ctx, index)
}

func (t *tracer) CreateAccount(ctx context.Context, a *store.Account) error {
	t.note("CreateAccount")
	return t.Store.CreateAccount(ctx, a)
}

func (t *tracer) PutCode(ctx context.Context, c *store.Code) error {
	t.note("PutCode")
	return t.Store.PutCode(ctx, c)
}

func (t *tracer) PutContactChange(ctx context.Context, c *store.ContactChange) error {
	t.note("PutContactChange")
	return t.Store.PutContactChange(ctx, c)
}

func (t *tracer) CreateResetToken(ctx context.Context, r *store.ResetToken) error {
	t.note("CreateResetToken")
	return t.Store.CreateResetToken(ctx, r)
}

func (t *tracer) EnqueueOutbound(ctx context.Context, j *store.OutboundJob) error {
	t.note("EnqueueOutbound")
	return t.Store.EnqueueOutbound(ctx, j)
}

// TestFinding4SameWork: the timing of finding 4 came from different work.
// Sign-up, a password-reset request and a contact change now do the same
// work in the request (the same store calls in the same order, one job
// queued) whether or not the contact belongs to an account; whatever
// differs happens later in the queue's worker. The benchmarks
// (timing_bench_test.go, docs/benchmarks.md) measure the times.
func TestFinding4SameWork(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			tr := &tracer{}
			lim := roomy()
			e := newEnvWrap(t, b, &lim, time.Now, func(st store.Store) store.Store { tr.Store = st; return tr })
			e.signup("owner@example.com", "+447911100881")
			_, tok := e.signup("mover@example.com", "+447911100882")
			e.drain()
			trace := func(method, path, token string, body map[string]string, status int) string {
				t.Helper()
				tr.take()
				e.want(method, path, token, body, status)
				return tr.take()
			}
			signup := func(email, mobile string) string {
				return trace("POST", "/api/v1/accounts", "", map[string]string{"email": email, "mobile": mobile, "password": strongPW2}, 201)
			}
			fresh := signup("fresh@example.com", "+447911100883")
			if !strings.Contains(fresh, "CreateAccount") || strings.Count(fresh, "EnqueueOutbound") != 1 {
				t.Fatalf("a new sign-up's work: %s", fresh)
			}
			for name, got := range map[string]string{
				"taken email":  signup("\uff4fwner@example.com", "+447911100884"),
				"taken mobile": signup("fresh2@example.com", "+447911100881"),
				"both taken":   signup("owner@example.com", "+447911100881"),
			} {
				if got != fresh {
					t.Errorf("sign-up with a %s: store calls %s, want those of a new sign-up: %s", name, got, fresh)
				}
			}
			reset := func(email string) string {
				return trace("POST", "/api/v1/password-reset", "", map[string]string{"email": email}, 202)
			}
			known := reset("owner@example.com")
			if known != "EnqueueOutbound" {
				t.Errorf("a reset request's work: %s, want one queued job", known)
			}
			if got := reset("ghost@example.com"); got != known {
				t.Errorf("reset for an unknown address: %s, want %s", got, known)
			}
			change := func(ch, value string) string {
				return trace("POST", "/api/v1/me/contact", tok, map[string]string{"channel": ch, "value": value, "password": strongPW}, 202)
			}
			free := change("email", "moved@example.com")
			if got := change("email", "OWNER@example.com"); got != free {
				t.Errorf("contact change to a taken email: %s, want %s", got, free)
			}
			freeMobile := change("mobile", "+447911100885")
			if got := change("mobile", "+447911100881"); got != freeMobile {
				t.Errorf("contact change to a taken number: %s, want %s", got, freeMobile)
			}
		})
	}
}

// consoleLogin submits the console's login form from a new browser (a
// cookie jar of its own) and returns the status.
func (e *env) consoleLogin(email, pw, code string) int {
	e.t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(e.url + "/console/login")
	if err != nil {
		e.t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
	if m == nil {
		e.t.Fatalf("no CSRF token on the console login page: %d %.300s", resp.StatusCode, page)
	}
	form := url.Values{"csrf": {string(m[1])}, "email": {email}, "password": {pw}, "code": {code}}
	resp, err = c.PostForm(e.url+"/console/login", form)
	if err != nil {
		e.t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestFinding5SeparateBudgets: user login, staff login and gateway
// enrolment from one address each have a budget of their own (they shared
// one): spending any one leaves the others whole.
func TestFinding5SeparateBudgets(t *testing.T) {
	lim := roomy()
	lim.LoginPerHour, lim.LoginBurst = 1, 2
	lim.StaffPerHour, lim.StaffBurst = 1, 2
	lim.EnrollPerHour, lim.EnrollBurst = 1, 2
	e := newEnv(t, storetest.Backends()[0], &lim)
	if _, err := e.srv.Staff.Bootstrap(context.Background(), "boss@staff.example", "admin", strongPW); err != nil {
		t.Fatal(err)
	}
	userLogin := func() int {
		code, _ := e.call("POST", "/api/v1/sessions", "", map[string]string{"email": "nobody@example.com", "password": "whatever it is"})
		return code
	}
	staffLogin := func() int { return e.consoleLogin("boss@staff.example", "not the password", "") }
	enroll := func() int {
		code, _ := e.call("POST", "/api/v1/gateway/enroll", "", map[string]string{"token": "nne_bogus", "public_key": newKey(t)})
		return code
	}
	// spend makes n attempts that are answered refused, and one more
	// that is over the budget.
	spend := func(name string, try func() int, refused, n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			if code := try(); code != refused {
				t.Fatalf("%s %d: got %d, want %d", name, i+1, code, refused)
			}
		}
		if code := try(); code != http.StatusTooManyRequests {
			t.Fatalf("%s past the budget: got %d, want 429", name, code)
		}
	}
	spend("user login", userLogin, 401, 2)
	// The staff member can still log in from this address (one of the
	// two staff logins the budget allows).
	if code := e.consoleLogin("boss@staff.example", strongPW, ""); code != http.StatusSeeOther {
		t.Fatalf("staff login after the user-login budget was spent: got %d, want 303", code)
	}
	spend("staff login", staffLogin, 401, 1)
	spend("gateway enrolment", enroll, 401, 2)
	if code := userLogin(); code != http.StatusTooManyRequests {
		t.Fatalf("user login stays refused: got %d", code)
	}
}

// TestLookupsTakeOldSpellings: the rule against domains that mix scripts
// is for new contacts; a staff lookup of such an address looks it up
// (none found) instead of refusing it as if it were being registered.
func TestLookupsTakeOldSpellings(t *testing.T) {
	lim := roomy()
	e := newEnv(t, storetest.Backends()[0], &lim)
	ctx := context.Background()
	if _, err := e.srv.Staff.Bootstrap(ctx, "desk@staff.example", staff.RoleSupport, strongPW); err != nil {
		t.Fatal(err)
	}
	p, err := e.srv.Staff.Check(ctx, staff.Credentials{Email: "desk@staff.example", Password: strongPW})
	if err != nil {
		t.Fatal(err)
	}
	const mixed = "ida@b\u00fc\u0441her.example"
	if _, err := e.srv.Accounts.NormalizeContact(store.Email, mixed); !errs.Is(err, errs.Invalid) {
		t.Fatalf("NormalizeContact(%q): got %v, want Invalid (a new contact)", mixed, err)
	}
	if _, err := e.srv.Accounts.StaffLookup(ctx, p, store.Email, mixed); !errs.Is(err, errs.NotFound) {
		t.Fatalf("StaffLookup(%q): got %v, want NotFound", mixed, err)
	}
}

// TestJobsOfErasedAccounts: a sign-up's codes still queued when the
// account is erased are dropped by the worker, not retried for a day
// against contacts that no longer exist.
func TestJobsOfErasedAccounts(t *testing.T) {
	lim := roomy()
	e := newEnv(t, storetest.Backends()[0], &lim)
	ctx := context.Background()
	e.drain()
	out := e.want("POST", "/api/v1/accounts", "", map[string]string{"email": "brief@example.com", "mobile": "+447911100891", "password": strongPW}, 201)
	id, _ := out["id"].(string)
	if e.queued() != 1 {
		t.Fatalf("queued after sign-up: %d, want 1", e.queued())
	}
	now := time.Now().UTC().Truncate(time.Second)
	req := &store.PrivacyRequest{ID: "prq_erasedbeforecodes", AccountID: id, Type: store.RequestErasure, Status: store.RequestVerified,
		ReceivedAt: now, VerifiedAt: &now, DueAt: now.AddDate(0, 1, 0)}
	// A request's text is stored sealed under the account's key (an empty
	// text, as the service writes for a request with no details).
	key, err := e.srv.Keys.Open(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	req.Sealed, err = key.Seal(acctkey.RequestText, req.ID, "{}")
	key.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Store.CreatePrivacyRequest(ctx, req); err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.Store.EraseAccount(ctx, store.Erasure{RequestID: req.ID, AccountID: id, At: now, Outcome: "erased"}); err != nil {
		t.Fatal(err)
	}
	e.drain()
	if n := e.queued(); n != 0 {
		t.Fatalf("the erased account's job is still queued (%d), to be retried", n)
	}
	if strings.Contains(e.logs.String(), "will retry") {
		t.Fatal("the erased account's job failed and was rescheduled")
	}
}
