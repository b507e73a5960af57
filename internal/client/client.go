// Package client is a Go client for Nitronet's HTTP API, used by the CLI.
// It never sends a device private key: the device API takes public keys
// only.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
)

// Client calls the API at BaseURL with an optional Bearer Token.
type Client struct {
	BaseURL string
	Token   string
	HTTP    *http.Client
}

// New returns a Client for base with the given token ("" for none).
func New(base, token string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: 60 * time.Second}
	}
	return &Client{BaseURL: strings.TrimRight(base, "/"), Token: token, HTTP: hc}
}

// APIError is an error response from the server: the API's body
// {"error": {"code", "message", "field"}} and the HTTP status.
//
// Field, when set, is the JSON name of the request input the error is
// about, as the API documents it (docs/api-errors.md): "email",
// "mobile_code", "public_key" and so on. A front end such as the CLI
// uses it to name its own input (a flag or a prompt) instead of reading
// the message; errs.FieldOf(err) returns it too, since an APIError
// unwraps to the equivalent *errs.Error.
type APIError struct {
	Status  int
	Code    string // an errs.Code, or "http" when the body was not the API's
	Message string
	Field   string // "" when the error is about no single input
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s (%s, HTTP %d)", e.Message, e.Code, e.Status)
}

// Unwrap returns the server's domain error (code, message and field) as
// an *errs.Error, so that errs.CodeOf, errs.Is and errs.FieldOf work on
// API errors as on the services' own. An answer that was not the API's
// error body unwraps to nil (errs.CodeOf then says Internal).
func (e *APIError) Unwrap() error {
	if e.Code == "http" || e.Code == "" {
		return nil
	}
	return &errs.Error{Code: errs.Code(e.Code), Message: e.Message, Field: e.Field}
}

// Do sends method path with body in as JSON and decodes the answer into
// out (if non-nil). A non-2xx answer is an *APIError.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "cannot reach the server at "+c.BaseURL)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var eb struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
				Field   string `json:"field"`
			} `json:"error"`
		}
		if json.Unmarshal(data, &eb) == nil && eb.Error.Code != "" {
			return &APIError{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message, Field: eb.Error.Field}
		}
		return &APIError{Status: resp.StatusCode, Code: "http", Message: http.StatusText(resp.StatusCode)}
	}
	if out != nil && len(data) > 0 {
		if s, ok := out.(*string); ok {
			*s = string(data)
			return nil
		}
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode response: %w", err)
		}
	}
	return nil
}

// Session is a login session.
type Session struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	// Device is the token to present at the next login (LoginAs): it
	// shows the server this client logged in before, so a stranger's
	// failed logins on the account do not slow it down.
	Device string `json:"device"`
}

// Profile is the caller's account.
type Profile struct {
	ID             string    `json:"id"`
	Email          string    `json:"email"`
	Mobile         string    `json:"mobile"`
	EmailVerified  bool      `json:"email_verified"`
	MobileVerified bool      `json:"mobile_verified"`
	CreatedAt      time.Time `json:"created_at"`
}

// Device is a registered device.
type Device struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	PublicKey string   `json:"public_key"`
	Addresses []string `json:"addresses"`
	// DNSBlocking names the DNS blocking categories the device chose.
	DNSBlocking []string  `json:"dns_blocking"`
	CreatedAt   time.Time `json:"created_at"`
}

// Gateway is a gateway clients can connect to.
type Gateway struct {
	ID       string `json:"id"`
	Region   string `json:"region"`
	Endpoint string `json:"endpoint"`
	// TCPPort is the port on Endpoint's host where the gateway takes
	// WireGuard over TCP, or 0 if it offers none.
	TCPPort   int        `json:"tcp_port,omitempty"`
	PublicKey string     `json:"public_key"`
	LastSeen  *time.Time `json:"last_seen,omitempty"`
}

// Signup creates an account and returns its id.
func (c *Client) Signup(ctx context.Context, email, mobile, password string) (string, error) {
	var out struct {
		ID string `json:"id"`
	}
	err := c.Do(ctx, "POST", "/api/v1/accounts", map[string]string{"email": email, "mobile": mobile, "password": password}, &out)
	return out.ID, err
}

// Login opens a session.
func (c *Client) Login(ctx context.Context, email, password string) (*Session, error) {
	return c.LoginAs(ctx, email, password, "")
}

// LoginAs opens a session from a client that presents device, the Device
// of an earlier Session for the same email ("" if none).
func (c *Client) LoginAs(ctx context.Context, email, password, device string) (*Session, error) {
	body := map[string]string{"email": email, "password": password}
	if device != "" {
		body["device"] = device
	}
	var s Session
	if err := c.Do(ctx, "POST", "/api/v1/sessions", body, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Logout ends the current session.
func (c *Client) Logout(ctx context.Context) error {
	return c.Do(ctx, "DELETE", "/api/v1/sessions/current", nil, nil)
}

// Me returns the caller's profile.
func (c *Client) Me(ctx context.Context) (*Profile, error) {
	var p Profile
	if err := c.Do(ctx, "GET", "/api/v1/me", nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Verify submits a verification code for channel.
func (c *Client) Verify(ctx context.Context, channel, code string) (*Profile, error) {
	var p Profile
	if err := c.Do(ctx, "POST", "/api/v1/me/verify", map[string]string{"channel": channel, "code": code}, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Resend asks for a new verification code on channel.
func (c *Client) Resend(ctx context.Context, channel string) error {
	return c.Do(ctx, "POST", "/api/v1/me/verify/resend", map[string]string{"channel": channel}, nil)
}

// RequestReset asks for a password-reset token by email.
func (c *Client) RequestReset(ctx context.Context, email string) error {
	return c.Do(ctx, "POST", "/api/v1/password-reset", map[string]string{"email": email}, nil)
}

// Reset sets a new password with a reset token.
func (c *Client) Reset(ctx context.Context, token, password string) error {
	return c.Do(ctx, "POST", "/api/v1/password-reset/confirm", map[string]string{"token": token, "password": password}, nil)
}

// AddDevice registers a device by its public key, blocking the DNS
// categories named by dnsBlocking (none if empty).
func (c *Client) AddDevice(ctx context.Context, name, publicKey string, dnsBlocking []string) (*Device, error) {
	in := map[string]any{"name": name, "public_key": publicKey}
	if len(dnsBlocking) > 0 {
		in["dns_blocking"] = dnsBlocking
	}
	var d Device
	if err := c.Do(ctx, "POST", "/api/v1/devices", in, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// Devices lists the caller's devices.
func (c *Client) Devices(ctx context.Context) ([]Device, error) {
	var out struct {
		Devices []Device `json:"devices"`
	}
	err := c.Do(ctx, "GET", "/api/v1/devices", nil, &out)
	return out.Devices, err
}

// RemoveDevice deletes a device.
func (c *Client) RemoveDevice(ctx context.Context, id string) error {
	return c.Do(ctx, "DELETE", "/api/v1/devices/"+url.PathEscape(id), nil, nil)
}

// SetDNSBlocking replaces the DNS blocking categories of a device; an
// empty list blocks nothing.
func (c *Client) SetDNSBlocking(ctx context.Context, id string, categories []string) (*Device, error) {
	if categories == nil {
		categories = []string{}
	}
	var d Device
	if err := c.Do(ctx, "PATCH", "/api/v1/devices/"+url.PathEscape(id), map[string]any{"dns_blocking": categories}, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// UpdateDevice renames a device or rotates its public key (nil = unchanged).
func (c *Client) UpdateDevice(ctx context.Context, id string, name, publicKey *string) (*Device, error) {
	in := map[string]string{}
	if name != nil {
		in["name"] = *name
	}
	if publicKey != nil {
		in["public_key"] = *publicKey
	}
	var d Device
	if err := c.Do(ctx, "PATCH", "/api/v1/devices/"+url.PathEscape(id), in, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// Gateways lists the gateways.
func (c *Client) Gateways(ctx context.Context) ([]Gateway, error) {
	var out struct {
		Gateways []Gateway `json:"gateways"`
	}
	err := c.Do(ctx, "GET", "/api/v1/gateways", nil, &out)
	return out.Gateways, err
}
