package web

import (
	"net/http"
	"net/url"
	"time"

	"github.com/nitronet/nitronet/internal/devices"
	"github.com/nitronet/nitronet/internal/dnsblock"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/gateways"
	"github.com/nitronet/nitronet/internal/httpedge"
	"github.com/nitronet/nitronet/internal/usage"
	"github.com/nitronet/nitronet/internal/wgconf"
)

// devicesData is the data of the devices page.
type devicesData struct {
	Cards    []deviceCard
	Verified bool
	// Categories are the DNS blocking categories a device may choose.
	Categories []string
	// Count of Limit devices: the limit is the devices service's.
	Count, Limit int
	// Recording is false when the server keeps no session intervals
	// (usage recording "none"): last use is then unknown.
	Recording bool
	Apps      []wgApp
}

// deviceCard is one device on the devices page, with what the session
// data says about its use.
type deviceCard struct {
	devices.Device
	Activity usage.Activity
	Used     bool // a session interval is stored
	// KeyAgeDays is the age of the current key in whole days.
	KeyAgeDays int
}

// wgApp is a link to an official WireGuard app.
type wgApp struct{ Platform, URL string }

// wireGuardApps are the official WireGuard apps, linked when an account
// has no device yet and from the home page.
func wireGuardApps() []wgApp {
	return []wgApp{
		{"Android", "https://play.google.com/store/apps/details?id=com.wireguard.android"},
		{"iPhone and iPad", "https://apps.apple.com/app/wireguard/id1441195209"},
		{"macOS", "https://apps.apple.com/app/wireguard/id1451685025"},
		{"Windows", "https://download.wireguard.com/windows-client/"},
		{"Linux", "https://www.wireguard.com/install/"},
	}
}

func (h *Handler) devicesView(r *http.Request, st *state) (*view, error) {
	prof, err := h.cfg.Accounts.Profile(r.Context(), st.accountID)
	if err != nil {
		return nil, err
	}
	ds, err := h.cfg.Devices.List(r.Context(), st.accountID)
	if err != nil {
		return nil, err
	}
	act, err := h.cfg.Usage.Activity(r.Context(), st.accountID)
	if err != nil {
		return nil, err
	}
	now := h.cfg.Clock()
	cards := make([]deviceCard, 0, len(ds))
	for _, d := range ds {
		a, used := act[d.ID]
		age := int(now.Sub(d.KeyCreatedAt) / (24 * time.Hour))
		cards = append(cards, deviceCard{Device: d, Activity: a, Used: used, KeyAgeDays: max(age, 0)})
	}
	return &view{Title: "Devices", Nav: "devices", Errors: map[string]string{}, Form: map[string]string{},
		Data: devicesData{Cards: cards, Verified: prof.EmailVerified && prof.MobileVerified,
			Count: len(ds), Limit: h.cfg.Devices.Limit(), Recording: h.cfg.Usage.Mode() != usage.RecordNone,
			Apps: wireGuardApps(), Categories: dnsblock.All.Names()}}, nil
}

func (h *Handler) devicesPage(w http.ResponseWriter, r *http.Request, st *state) {
	v, err := h.devicesView(r, st)
	if err != nil {
		h.renderError(w, r, st, err)
		return
	}
	h.render(w, r, st, http.StatusOK, "devices", v)
}

// deviceNewData is the data of the add-device page.
type deviceNewData struct {
	Verified bool
	Gateways []gateways.Gateway // enrolled gateways only
	Entries  []gateways.Gateway // those of Gateways with multihop relay ports
}

// multihopEntries returns the gateways of gws that relay to another
// gateway, which the key forms offer as entries of a multihop
// configuration (devices.Service.Multihop decides whether an entry
// reaches the exit chosen).
func multihopEntries(gws []gateways.Gateway) []gateways.Gateway {
	var out []gateways.Gateway
	for _, g := range gws {
		if len(g.Relays) > 0 {
			out = append(out, g)
		}
	}
	return out
}

// deviceNewPage shows the add-device form. The browser creates the key
// pair (js/device-new.js); the server never sees the private key.
func (h *Handler) deviceNewPage(w http.ResponseWriter, r *http.Request, st *state) {
	prof, err := h.cfg.Accounts.Profile(r.Context(), st.accountID)
	if err != nil {
		h.renderError(w, r, st, err)
		return
	}
	gws, err := h.cfg.Gateways.Enrolled(r.Context())
	if err != nil {
		h.renderError(w, r, st, err)
		return
	}
	h.render(w, r, st, http.StatusOK, "device-new", &view{Title: "Add a device", Nav: "devices",
		Scripts: []string{"/static/vendor/qrcode-generator/qrcode.js", "/static/js/device-new.js"},
		Data:    deviceNewData{Verified: prof.EmailVerified && prof.MobileVerified, Gateways: gws, Entries: multihopEntries(gws)}})
}

// addResponse answers the add-device request of js/device-new.js.
type addResponse struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	Addresses []string `json:"addresses"`
	ConfigURL string   `json:"config_url"`
}

// deviceAddFields places the errors of the add-device form.
var deviceAddFields = fields{"name": "name", "public_key": "public_key", "gateway": "gateway", "exit": "gateway", "entry": "entry"}

// configRoute checks the gateway (and, for multihop, the entry) of a key
// form before any key is registered, and returns the URL of the
// configuration the browser fetches for device id once it is.
func (h *Handler) configRoute(r *http.Request) (func(id string) string, error) {
	gwName, entry := r.PostForm.Get("gateway"), r.PostForm.Get("entry")
	if gwName == "" {
		return nil, errs.Field(errs.Invalid, "gateway", "Choose one of the gateways listed.")
	}
	var q url.Values
	if entry == "" {
		gw, err := h.cfg.Devices.Gateway(r.Context(), gwName)
		if err != nil {
			return nil, err
		}
		q = url.Values{"gateway": {gw.ID}}
	} else {
		in, out, _, err := h.cfg.Devices.Multihop(r.Context(), entry, gwName)
		if err != nil {
			return nil, err
		}
		q = url.Values{"gateway": {out.ID}, "entry": {in.ID}}
	}
	return func(id string) string { return "/devices/" + url.PathEscape(id) + "/config?" + q.Encode() }, nil
}

// writeJSONError writes err for js/device-new.js as the API's error body
// (httpedge.ErrorBody) with httpedge's status, except that its field is the
// id of the form field fs places it beside ("" for above the form) and its
// message reads as a sentence.
func (h *Handler) writeJSONError(w http.ResponseWriter, r *http.Request, fs fields, err error) {
	b := httpedge.Body(err)
	b.Error.Message = h.publicMessage(r, err)
	b.Error.Field = fs.of(err)
	httpedge.WriteErrorBody(w, httpedge.StatusOf(err), b)
}

// deviceAddPost registers a device from its name and public key (form
// fields name, public_key, gateway) and answers JSON with the URL of its
// configuration template. It is called by js/device-new.js with the CSRF
// token in a header. The body never contains a private key; if a field
// other than these is sent, the request is refused, so a private key
// cannot be slipped in by mistake.
func (h *Handler) deviceAddPost(w http.ResponseWriter, r *http.Request, st *state) {
	for k := range r.PostForm {
		switch k {
		case "name", "public_key", "gateway", "entry", csrfField:
		default:
			h.writeJSONError(w, r, nil, errs.E(errs.Invalid, "unexpected field %q", k))
			return
		}
	}
	name, err := devices.ValidateName(r.PostForm.Get("name"))
	if err != nil {
		h.writeJSONError(w, r, deviceAddFields, err)
		return
	}
	configURL, err := h.configRoute(r)
	if err != nil {
		h.writeJSONError(w, r, deviceAddFields, err)
		return
	}
	d, err := h.cfg.Devices.Add(r.Context(), st.accountID, name, r.PostForm.Get("public_key"))
	if err != nil {
		h.writeJSONError(w, r, deviceAddFields, err)
		return
	}
	httpedge.WriteJSON(w, http.StatusCreated, addResponse{ID: d.ID, Name: d.Name, Addresses: d.Addresses,
		ConfigURL: configURL(d.ID)})
}

// deviceConfig answers the device's wg-quick configuration for one
// gateway (?gateway=ID; with ?entry=ID, a multihop configuration that
// reaches it through that entry's relay port), with an empty PrivateKey line for the browser to
// fill in. The devices service builds it, as for the API's export.
func (h *Handler) deviceConfig(w http.ResponseWriter, r *http.Request, st *state) {
	gwName := r.URL.Query().Get("gateway")
	if gwName == "" {
		h.renderError(w, r, st, errs.Field(errs.Invalid, "gateway", "Choose one of the gateways listed."))
		return
	}
	var c wgconf.Config
	var err error
	if entry := r.URL.Query().Get("entry"); entry != "" {
		c, _, _, err = h.cfg.Devices.WireGuardMultihop(r.Context(), st.accountID, r.PathValue("id"), entry, gwName)
	} else {
		c, _, err = h.cfg.Devices.WireGuard(r.Context(), st.accountID, r.PathValue("id"), gwName)
	}
	if err != nil {
		h.renderError(w, r, st, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(c.Render()))
}

// deviceRotateData is the data of the key rotation page.
type deviceRotateData struct {
	Device   *devices.Device
	Gateways []gateways.Gateway
	Entries  []gateways.Gateway // as deviceNewData.Entries
}

// deviceRotatePage shows the key rotation form of one device. As when a
// device is added, the browser makes the new key pair (js/device-new.js)
// and sends only the public key.
func (h *Handler) deviceRotatePage(w http.ResponseWriter, r *http.Request, st *state) {
	d, err := h.cfg.Devices.Get(r.Context(), st.accountID, r.PathValue("id"))
	if err != nil {
		h.renderError(w, r, st, err)
		return
	}
	gws, err := h.cfg.Gateways.Enrolled(r.Context())
	if err != nil {
		h.renderError(w, r, st, err)
		return
	}
	h.render(w, r, st, http.StatusOK, "device-rotate", &view{Title: "New key for " + d.Name, Nav: "devices",
		Scripts: []string{"/static/vendor/qrcode-generator/qrcode.js", "/static/js/device-new.js"},
		Data:    deviceRotateData{Device: d, Gateways: gws, Entries: multihopEntries(gws)}})
}

// deviceKeyPost replaces a device's public key (form fields public_key
// and gateway) and answers JSON as deviceAddPost does: the device keeps
// its name and addresses, gateways drop the old key at once. Like
// deviceAddPost it refuses any other field, so no private key can be
// slipped in.
func (h *Handler) deviceKeyPost(w http.ResponseWriter, r *http.Request, st *state) {
	for k := range r.PostForm {
		switch k {
		case "public_key", "gateway", "entry", csrfField:
		default:
			h.writeJSONError(w, r, nil, errs.E(errs.Invalid, "unexpected field %q", k))
			return
		}
	}
	configURL, err := h.configRoute(r)
	if err != nil {
		h.writeJSONError(w, r, deviceAddFields, err)
		return
	}
	key := r.PostForm.Get("public_key")
	d, err := h.cfg.Devices.Change(r.Context(), st.accountID, r.PathValue("id"), devices.Changes{PublicKey: &key})
	if err != nil {
		h.writeJSONError(w, r, deviceAddFields, err)
		return
	}
	httpedge.WriteJSON(w, http.StatusOK, addResponse{ID: d.ID, Name: d.Name, Addresses: d.Addresses,
		ConfigURL: configURL(d.ID)})
}

// deviceRenamePost saves a device's settings form: its name and, when the
// form carries them (dns_blocking_form), its DNS blocking categories.
func (h *Handler) deviceRenamePost(w http.ResponseWriter, r *http.Request, st *state) {
	id := r.PathValue("id")
	name := r.PostForm.Get("name")
	c := devices.Changes{Name: &name}
	if r.PostForm.Has("dns_blocking_form") {
		cats := r.PostForm["dns_blocking"]
		if cats == nil {
			cats = []string{}
		}
		c.DNSBlocking = &cats
	}
	if _, err := h.cfg.Devices.Change(r.Context(), st.accountID, id, c); err != nil {
		v, verr := h.devicesView(r, st)
		if verr != nil {
			h.renderError(w, r, st, verr)
			return
		}
		v.Form["name-"+id] = name
		// Each device has its own rename form, open while it has an error.
		h.render(w, r, st, h.place(r, v, fields{"name": "name-" + id}, err), "devices", v)
		return
	}
	redirect(w, r, "/devices?msg=renamed")
}

// deviceRemovePost removes a device; gateways drop it at once.
func (h *Handler) deviceRemovePost(w http.ResponseWriter, r *http.Request, st *state) {
	if err := h.cfg.Devices.Remove(r.Context(), st.accountID, r.PathValue("id")); err != nil {
		h.renderError(w, r, st, err)
		return
	}
	redirect(w, r, "/devices?msg=removed")
}
