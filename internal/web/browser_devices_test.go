package web_test

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/wgkey"
	"golang.org/x/crypto/curve25519"
)

// smallTargets is the script that lists the visible controls (links in
// the header, footer, actions and lists, buttons, summaries, inputs) whose
// box is under 24 by 24 CSS pixels, measured with getBoundingClientRect.
// Links inside running text are exempt (WCAG 2.5.8's inline exception).
const smallTargets = `(() => {
	const sel = 'header a, header button, footer a, main button, main a.button, main summary, main input:not([type=hidden]), main select, ul.apps a, .error-summary a, #done';
	const out = [];
	for (const el of document.querySelectorAll(sel)) {
		const r = el.getBoundingClientRect();
		if (r.width === 0 && r.height === 0) continue; // not shown
		if (getComputedStyle(el).visibility === 'hidden') continue;
		if (r.width < 24 || r.height < 24) out.push((el.id || el.tagName + ' ' + el.textContent.trim().slice(0, 30)) + ' ' + Math.round(r.width) + 'x' + Math.round(r.height));
	}
	return out;
})()`

// TestBrowserDevicesPage walks the devices page, key rotation in the
// browser and the error summary, on a desktop viewport and on a 390×844
// phone one, with screenshots in the test's temporary directory.
func TestBrowserDevicesPage(t *testing.T) {
	e := newEnv(t)
	ctx, rec := startBrowser(t)
	// Screenshots go to the test's temporary directory, or under
	// NITRONET_ARTIFACTS when set (to keep them, as CI does).
	dir := t.TempDir()
	if os.Getenv("NITRONET_ARTIFACTS") != "" {
		dir = artifacts(t)
	}
	j := &journey{t: t, ctx: ctx, e: e, dir: dir}
	t.Logf("screenshots in %s", j.dir)
	const (
		email  = "devices@example.com"
		mobile = "+447911100124"
		pw     = "correct horse battery staple"
	)

	// Count the before-leaving questions (startBrowser accepts them).
	var unloadAsked atomic.Int32
	if err := chromedp.Listen(ctx, func(ev any) {
		if d, ok := ev.(*page.EventJavascriptDialogOpening); ok && d.Type == page.DialogTypeBeforeunload {
			unloadAsked.Add(1)
		}
	}); err != nil {
		t.Fatal(err)
	}

	// The home page fits one desktop screen, with the inventory one click
	// away.
	j.open("/", "h1")
	if h := eval[[]int](j, `[document.documentElement.scrollHeight, window.innerHeight]`); h[0] > h[1] {
		t.Errorf("home page is %d px tall in a %d px window, want one screen", h[0], h[1])
	}
	if got := eval[[]string](j, `Array.from(document.querySelectorAll('#regions li')).map(li => li.textContent)`); fmt.Sprint(got) != "[eu-west]" {
		t.Errorf("home page regions %v, want [eu-west]", got)
	}
	j.shot("home")
	j.do("open the inventory", chromedp.Click(chromedp.ID("inventory-link")), chromedp.WaitVisible(chromedp.CSS("body:not([data-stale]) #never")))

	// The error summary: every bad field at once, focused, linking to them.
	j.open("/signup", "#email")
	j.do("submit a bad sign-up", chromedp.SendKeys(chromedp.ID("email"), "not-an-address"),
		chromedp.SendKeys(chromedp.ID("mobile"), "12"), chromedp.SendKeys(chromedp.ID("password"), "short"),
		chromedp.Submit(chromedp.ID("password")), chromedp.WaitVisible(chromedp.CSS("body:not([data-stale]) #error-summary")))
	links := eval[[]string](j, `Array.from(document.querySelectorAll('#error-summary a')).map(a => a.getAttribute('href'))`)
	if fmt.Sprint(links) != "[#email #mobile #password]" {
		t.Errorf("error summary links %v, want [#email #mobile #password]: every field's error at once, in form order", links)
	}
	for _, id := range []string{"email", "mobile", "password"} {
		if got := j.text("#" + id + "-error"); got == "" {
			t.Errorf("no error beside %s", id)
		}
	}
	// site.js focuses it at DOMContentLoaded, which may come just after
	// the summary is first drawn.
	if err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](`document.activeElement.id === "error-summary"`,
		chromedp.WithPollingTimeout(5*time.Second))); err != nil {
		t.Errorf("focus on %q after a refused form, want the error summary (%v)", eval[string](j, `document.activeElement.id`), err)
	}
	j.shot("signup-errors")

	// An account with two devices, one of them connected now; the browser
	// takes the session of a sign-up made through the forms.
	b := e.client(t)
	b.signup(email, mobile, pw)
	acct := e.accountID(email, pw)
	// The devices were added four hours ago (a gateway may report no
	// session from before a device existed).
	var ids []string
	e.at(-4*time.Hour, func() {
		for _, name := range []string{"laptop", "phone"} {
			k, err := wgkey.Generate(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			d, err := e.srv.Devices.Add(ctx, acct, name, k.Public().String())
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, d.ID)
		}
	})
	now := time.Now().UTC()
	ended := now.Add(-2 * time.Hour).Truncate(time.Minute)
	if err := e.srv.Usage.Report(ctx, e.gwID, "eu-west", gwproto.SessionReport{Intervals: []gwproto.Interval{
		{DeviceID: ids[0], Start: now.Add(-20 * time.Minute)},
		{DeviceID: ids[1], Start: ended.Add(-time.Hour), End: &ended},
	}}); err != nil {
		t.Fatal(err)
	}
	var session string
	for _, c := range b.jar.Cookies(mustURL(t, e.url)) {
		if c.Name == "nitronet_session" {
			session = c.Value
		}
	}
	if _, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{Name: "nitronet_session", Value: session, URL: e.url, HTTPOnly: new(true)}); err != nil {
		t.Fatal(err)
	}

	for _, vp := range []struct {
		name  string
		phone bool
	}{{"desktop", false}, {"phone", true}} {
		if vp.phone {
			j.do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
		} else {
			j.do("desktop viewport", chromedp.EmulateViewport(1280, 900))
		}
		walkDevices(t, j, vp.name, vp.phone, ids, ended, &unloadAsked)
	}

	// Dark theme from prefers-color-scheme.
	j.open("/devices", "li.device")
	light := eval[string](j, `getComputedStyle(document.body).backgroundColor`)
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}}); err != nil {
		t.Fatal(err)
	}
	dark := eval[string](j, `getComputedStyle(document.body).backgroundColor`)
	if light == dark || dark != "rgb(18, 22, 28)" {
		t.Errorf("body background light %s, dark %s: want the dark theme's rgb(18, 22, 28)", light, dark)
	}
	j.shot("phone-dark")
	j.open("/", "h1")
	t.Logf("home page on the phone: %d px tall", eval[int](j, `document.documentElement.scrollHeight`))

	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, c := range rec.console {
		if strings.Contains(c, "exception") || strings.Contains(c, "Content Security Policy") || strings.Contains(c, "Refused to") {
			t.Errorf("browser reported a script error or CSP violation: %s", c)
		}
	}
}

// walkDevices checks the devices page, a refused rename and a key
// rotation at the current viewport.
func walkDevices(t *testing.T, j *journey, vp string, phone bool, ids []string, ended time.Time, unloadAsked *atomic.Int32) {
	t.Helper()
	ctx := j.ctx
	j.open("/devices", "li.device")
	j.noOverflow("/devices")
	if got := j.text("#device-count"); got != "2 of 3 devices" {
		t.Errorf("%s: count %q, want %q (the devices service's limit)", vp, got, "2 of 3 devices")
	}
	card := func(id, sel string) string { return j.text("#device-" + id + " " + sel) }
	if got := card(ids[0], ".state"); got != "Connected now" {
		t.Errorf("%s: laptop state %q, want Connected now", vp, got)
	}
	if got := card(ids[1], ".state"); got != "Not connected" {
		t.Errorf("%s: phone state %q, want Not connected", vp, got)
	}
	if got := card(ids[1], ".region"); got != "eu-west" {
		t.Errorf("%s: phone region %q, want eu-west", vp, got)
	}
	if got := card(ids[0], ".key-age"); !strings.HasPrefix(got, "today") {
		t.Errorf("%s: key age %q, want today", vp, got)
	}
	// Last used: the end of the phone's session, to the minute, shown by
	// the browser from <time datetime>.
	lastUsed := eval[[]string](j, `(() => { const t = document.querySelector('#device-`+ids[1]+` .last-used time'); return t ? [t.getAttribute('datetime'), String(t.hasAttribute('data-localised'))] : []; })()`)
	if len(lastUsed) != 2 || lastUsed[1] != "true" {
		t.Errorf("%s: last used %v, want a localised <time>", vp, lastUsed)
	} else if at, err := time.Parse(time.RFC3339, lastUsed[0]); err != nil || !at.Equal(ended) {
		t.Errorf("%s: last used %s, want the session's end two hours ago, to the minute", vp, lastUsed[0])
	}
	// The rename form sits behind the edit control.
	if eval[bool](j, `document.getElementById('name-`+ids[0]+`').checkVisibility()`) {
		t.Errorf("%s: the rename field is shown before Edit is pressed", vp)
	}
	if phone {
		menu := eval[[]bool](j, `[getComputedStyle(document.getElementById('main-nav-list')).display === 'none', document.getElementById('menu-toggle').getBoundingClientRect().height >= 24]`)
		if fmt.Sprint(menu) != "[true true]" {
			t.Errorf("phone: menu hidden, toggle shown = %v, want the menu collapsed behind its button", menu)
		}
		j.shot(vp + "-devices")
		j.do("open the menu", chromedp.Click(chromedp.ID("menu-toggle")))
		if !eval[bool](j, `getComputedStyle(document.getElementById('main-nav-list')).display !== 'none' && document.getElementById('menu-toggle').getAttribute('aria-expanded') === 'true'`) {
			t.Errorf("phone: the menu does not open from its button")
		}
		j.shot(vp + "-menu")
	} else if !eval[bool](j, `getComputedStyle(document.getElementById('menu-toggle')).display === 'none' && getComputedStyle(document.getElementById('main-nav-list')).display !== 'none'`) {
		t.Errorf("desktop: the menu is collapsed, want it shown")
	}
	if small := eval[[]string](j, smallTargets); len(small) > 0 {
		t.Errorf("%s /devices: targets under 24 px: %v", vp, small)
	}
	j.shot(vp + "-devices-open")

	// Renaming to another device's name (in another case) is refused with
	// the error beside the field and in the focused summary.
	nameID := "name-" + ids[0]
	j.do("rename to a taken name", chromedp.Click(chromedp.CSS("#device-"+ids[0]+" details.edit summary")),
		chromedp.SetValue(chromedp.ID(nameID), "PHONE"), chromedp.Submit(chromedp.ID(nameID)),
		chromedp.WaitVisible(chromedp.CSS("body:not([data-stale]) #error-summary")))
	if got := j.text("#" + nameID + "-error"); !strings.Contains(got, "already have a device named") {
		t.Errorf("%s: rename error %q, want the name refused", vp, got)
	}
	if got := eval[[]string](j, `[document.activeElement.id, document.querySelector('#error-summary a').getAttribute('href')]`); fmt.Sprint(got) != "[error-summary #"+nameID+"]" {
		t.Errorf("%s: focus and summary link %v, want the focused summary linking to #%s", vp, got, nameID)
	}
	if small := eval[[]string](j, smallTargets); len(small) > 0 {
		t.Errorf("%s rename error: targets under 24 px: %v", vp, small)
	}
	j.shot(vp + "-rename-refused")

	// Rotate the laptop's key in the browser.
	before, err := j.e.srv.Devices.Get(ctx, mustAccount(t, j), ids[0])
	if err != nil {
		t.Fatal(err)
	}
	j.do("rotate", chromedp.Click(chromedp.CSS("#device-"+ids[0]+" a.rotate")), chromedp.WaitVisible(chromedp.ID("add-submit")))
	j.shot(vp + "-rotate")
	j.do("create the new key", chromedp.Click(chromedp.ID("add-submit")), chromedp.WaitVisible(chromedp.ID("result")), chromedp.WaitVisible(chromedp.ID("qr")))
	conf := eval[string](j, `document.getElementById('config-text').value`)
	m := privRE.FindStringSubmatch(conf)
	if m == nil {
		t.Fatalf("%s: rotated configuration has no PrivateKey:\n%s", vp, conf)
	}
	priv, _ := base64.StdEncoding.DecodeString(m[1])
	pubBytes, err := curve25519.X25519(priv, curve25519.Basepoint)
	if err != nil {
		t.Fatal(err)
	}
	pub := base64.StdEncoding.EncodeToString(pubBytes)
	after, err := j.e.srv.Devices.Get(ctx, mustAccount(t, j), ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if after.PublicKey != pub || pub == before.PublicKey {
		t.Errorf("%s: server holds key %s (before %s), want the browser's new %s", vp, after.PublicKey, before.PublicKey, pub)
	}
	if !strings.Contains(conf, "Address = "+strings.Join(after.Addresses, ", ")) {
		t.Errorf("%s: rotated configuration lacks the device's addresses %v:\n%s", vp, after.Addresses, conf)
	}
	got := eval[[]string](j, `[document.title, document.getElementById('result-h').textContent, document.getElementById('download').download, document.activeElement.id]`)
	if fmt.Sprint(got) != "[Configuration for laptop · Nitronet Configuration for laptop nitronet-laptop.conf result]" {
		t.Errorf("%s: title, heading, file name, focus = %q", vp, got)
	}
	if small := eval[[]string](j, smallTargets); len(small) > 0 {
		t.Errorf("%s config: targets under 24 px: %v", vp, small)
	}
	j.shot(vp + "-rotated")

	if !phone {
		// Leaving before saving asks first.
		j.do("leave unsaved", chromedp.Click(chromedp.ID("done")), chromedp.WaitVisible(chromedp.CSS("body:not([data-stale]) li.device")))
		if unloadAsked.Load() != 1 {
			t.Errorf("leaving the unsaved configuration asked %d times, want once", unloadAsked.Load())
		}
		return
	}
	// Copying counts as saved: leaving then asks nothing.
	for _, perm := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: perm}, Setting: browser.PermissionSettingGranted, Origin: j.e.url}); err != nil {
			t.Fatal(err)
		}
	}
	j.do("copy", chromedp.Click(chromedp.ID("copy-config")), chromedp.WaitVisible(chromedp.CSS("#copy-status:not(:empty)")))
	if got := j.text("#copy-status"); got != "Copied." {
		t.Errorf("phone: copy status %q, want Copied.", got)
	}
	if clip := eval[string](j, `navigator.clipboard.readText()`); clip != conf {
		t.Errorf("phone: the clipboard holds %q, want the configuration", clip)
	}
	asked := unloadAsked.Load()
	j.do("leave after copying", chromedp.Click(chromedp.ID("done")), chromedp.WaitVisible(chromedp.CSS("body:not([data-stale]) li.device")))
	if unloadAsked.Load() != asked {
		t.Errorf("leaving after copying asked before leaving")
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func mustAccount(t *testing.T, j *journey) string {
	t.Helper()
	return j.e.accountID("devices@example.com", "correct horse battery staple")
}
