package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/nitronet/nitronet/internal/api"
	"github.com/nitronet/nitronet/internal/devices"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/gateways"
)

// devicesData is the data of the devices page.
type devicesData struct {
	Devices  []devices.Device
	Verified bool
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
	return &view{Title: "Devices", Nav: "devices", Errors: map[string]string{}, Form: map[string]string{},
		Data: devicesData{Devices: ds, Verified: prof.EmailVerified && prof.MobileVerified}}, nil
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
}

// findGateway returns the enrolled gateway with id, or NotFound.
func findGateway(gws []gateways.Gateway, id string) (gateways.Gateway, error) {
	for _, g := range gws {
		if g.ID == id {
			return g, nil
		}
	}
	return gateways.Gateway{}, errs.E(errs.NotFound, "Choose one of the gateways listed.")
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
		Data:    deviceNewData{Verified: prof.EmailVerified && prof.MobileVerified, Gateways: gws}})
}

// addResponse answers the add-device request of js/device-new.js.
type addResponse struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	Addresses []string `json:"addresses"`
	ConfigURL string   `json:"config_url"`
}

// jsonError is the error body of the portal's JSON endpoint; Field names
// the form field the message belongs beside, if any.
type jsonError struct {
	Error struct {
		Code    errs.Code `json:"code"`
		Message string    `json:"message"`
		Field   string    `json:"field,omitempty"`
	} `json:"error"`
}

// writeJSON writes v as an uncacheable JSON answer.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeJSONError writes err for js/device-new.js, with api.StatusOf's
// status.
func (h *Handler) writeJSONError(w http.ResponseWriter, r *http.Request, field string, err error) {
	var b jsonError
	b.Error.Code = errs.CodeOf(err)
	b.Error.Message = upperFirst(errs.MessageOf(err))
	if b.Error.Code == errs.Internal {
		h.cfg.Logger.Error("web: internal error", "route", r.Pattern, "err", err)
		b.Error.Message = "Something went wrong on our side. Try again in a moment."
	}
	if b.Error.Code == errs.Invalid {
		b.Error.Field = field
	}
	writeJSON(w, statusOf(err), b)
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
		case "name", "public_key", "gateway", csrfField:
		default:
			h.writeJSONError(w, r, "", errs.E(errs.Invalid, "unexpected field %q", k))
			return
		}
	}
	name, err := devices.ValidateName(r.PostForm.Get("name"))
	if err != nil {
		h.writeJSONError(w, r, "name", err)
		return
	}
	gws, err := h.cfg.Gateways.Enrolled(r.Context())
	if err != nil {
		h.writeJSONError(w, r, "", err)
		return
	}
	gw, err := findGateway(gws, r.PostForm.Get("gateway"))
	if err != nil {
		h.writeJSONError(w, r, "gateway", errs.E(errs.Invalid, "%s", errs.MessageOf(err)))
		return
	}
	d, err := h.cfg.Devices.Add(r.Context(), st.accountID, name, r.PostForm.Get("public_key"))
	if err != nil {
		field := ""
		if strings.Contains(errs.MessageOf(err), "public_key") {
			field = "public_key"
		} else if errs.Is(err, errs.Invalid) {
			field = "name"
		}
		h.writeJSONError(w, r, field, err)
		return
	}
	writeJSON(w, http.StatusCreated, addResponse{ID: d.ID, Name: d.Name, Addresses: d.Addresses,
		ConfigURL: "/devices/" + url.PathEscape(d.ID) + "/config?gateway=" + url.QueryEscape(gw.ID)})
}

// deviceConfig answers the device's wg-quick configuration for one
// gateway (?gateway=ID), with an empty PrivateKey line for the browser to
// fill in. It is the same configuration as the API's export
// (api.DeviceConfig).
func (h *Handler) deviceConfig(w http.ResponseWriter, r *http.Request, st *state) {
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
	gw, err := findGateway(gws, r.URL.Query().Get("gateway"))
	if err != nil {
		h.renderError(w, r, st, err)
		return
	}
	c, err := api.DeviceConfig(d.Addresses, gw, h.cfg.GatewayDNS)
	if err != nil {
		h.renderError(w, r, st, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(c.Render()))
}

// deviceRenamePost renames a device.
func (h *Handler) deviceRenamePost(w http.ResponseWriter, r *http.Request, st *state) {
	id := r.PathValue("id")
	name := r.PostForm.Get("name")
	if _, err := h.cfg.Devices.Update(r.Context(), st.accountID, id, &name, nil); err != nil {
		if !errs.Is(err, errs.Invalid) {
			h.renderError(w, r, st, err)
			return
		}
		v, verr := h.devicesView(r, st)
		if verr != nil {
			h.renderError(w, r, st, verr)
			return
		}
		v.Errors["name-"+id] = upperFirst(errs.MessageOf(err))
		v.Form["name-"+id] = name
		h.render(w, r, st, statusOf(err), "devices", v)
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
