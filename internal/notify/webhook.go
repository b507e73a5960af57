package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// DefaultWebhookTimeout is the timeout of the *http.Client a Webhook creates
// when WebhookConfig.Client is nil.
const DefaultWebhookTimeout = 30 * time.Second

// WebhookConfig configures a Webhook.
type WebhookConfig struct {
	// URL receives the POST. It must be https, or http to a loopback
	// address (for a local SMS gateway), so that numbers, codes and the
	// token never cross a network in the clear.
	URL string
	// Token, if not empty, is sent as "Authorization: Bearer <Token>".
	Token string
	// Client sends the requests. If nil, a new client with
	// DefaultWebhookTimeout is used.
	Client *http.Client
}

// Webhook is a Notifier that sends SMS by POSTing JSON
// {"to": "+...", "body": "..."} to an HTTP endpoint, typically a small
// adapter in front of an SMS provider. It is safe for concurrent use.
type Webhook struct {
	url    string
	token  string
	client *http.Client
}

// NewWebhook returns a Webhook for cfg, or an error if cfg is invalid.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, errors.New("notify: webhook: invalid URL")
	}
	switch {
	case u.Host == "":
		return nil, errors.New("notify: webhook: URL has no host")
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
	default:
		return nil, errors.New("notify: webhook: URL must be https (or http to a loopback address)")
	}
	if hasControl(cfg.Token) {
		return nil, errors.New("notify: webhook: token contains a control character")
	}
	c := cfg.Client
	if c == nil {
		c = &http.Client{Timeout: DefaultWebhookTimeout}
	}
	return &Webhook{url: u.String(), token: cfg.Token, client: c}, nil
}

// isLoopbackHost reports whether h is "localhost" or a loopback IP address.
func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// webhookPayload is the JSON body a Webhook sends.
type webhookPayload struct {
	To   string `json:"to"`
	Body string `json:"body"`
}

// Send POSTs m, whose Channel must be SMS, to the webhook. A 2xx response
// means success; the response body is ignored.
//
// It returns an *errs.Error with code errs.Invalid if m is malformed, and
// one with code errs.Unavailable if the request failed or the response was
// not 2xx; the latter's text contains neither the recipient nor the URL.
func (w *Webhook) Send(ctx context.Context, m Message) error {
	if err := m.validate(SMS); err != nil {
		return err
	}
	body, err := json.Marshal(webhookPayload{To: m.To, Body: m.Body})
	if err != nil {
		return sendFailed("webhook encode", m, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return sendFailed("webhook request", m, errors.New("cannot build request"))
	}
	req.Header.Set("Content-Type", "application/json")
	if w.token != "" {
		req.Header.Set("Authorization", "Bearer "+w.token)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		// *url.Error's text contains the URL, which may carry a secret.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return sendFailed("webhook post", m, err)
	}
	defer resp.Body.Close()
	// Drain a little so the connection can be reused.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return sendFailed("webhook post", m, fmt.Errorf("unexpected HTTP status %d", resp.StatusCode))
	}
	return nil
}

// compile-time checks
var (
	_ Notifier = (*SMTP)(nil)
	_ Notifier = (*Webhook)(nil)
	_ Notifier = (*Outbox)(nil)
	_ Notifier = Router{}
)
