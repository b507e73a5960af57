// Package server assembles and runs the control server (`nitronet serve`)
// from its configuration: storage, the PII vault, the notifier, the
// services and the HTTP API, with graceful shutdown.
package server

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/nitronet/nitronet/internal/accounts"
	"github.com/nitronet/nitronet/internal/acctkey"
	"github.com/nitronet/nitronet/internal/api"
	"github.com/nitronet/nitronet/internal/audit"
	"github.com/nitronet/nitronet/internal/breaches"
	"github.com/nitronet/nitronet/internal/config"
	"github.com/nitronet/nitronet/internal/devices"
	"github.com/nitronet/nitronet/internal/disclosures"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/gateways"
	"github.com/nitronet/nitronet/internal/holds"
	"github.com/nitronet/nitronet/internal/httpedge"
	"github.com/nitronet/nitronet/internal/inbox"
	"github.com/nitronet/nitronet/internal/inventory"
	"github.com/nitronet/nitronet/internal/jobs"
	"github.com/nitronet/nitronet/internal/metrics"
	"github.com/nitronet/nitronet/internal/notices"
	"github.com/nitronet/nitronet/internal/notify"
	"github.com/nitronet/nitronet/internal/outbound"
	"github.com/nitronet/nitronet/internal/password"
	"github.com/nitronet/nitronet/internal/peerfeed"
	"github.com/nitronet/nitronet/internal/policy"
	"github.com/nitronet/nitronet/internal/privacy"
	"github.com/nitronet/nitronet/internal/processing"
	"github.com/nitronet/nitronet/internal/processors"
	"github.com/nitronet/nitronet/internal/records"
	"github.com/nitronet/nitronet/internal/rekey"
	"github.com/nitronet/nitronet/internal/retention"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/stats"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/sqlstore"
	"github.com/nitronet/nitronet/internal/transparency"
	"github.com/nitronet/nitronet/internal/usage"
	"github.com/nitronet/nitronet/internal/vault"
	"github.com/nitronet/nitronet/internal/web"
)

// Deps are the process-level things a server is given rather than creates.
type Deps struct {
	Logger *slog.Logger
	Clock  func() time.Time
	Rand   io.Reader
	Stdout io.Writer // start-up notices for the operator
	// Limits overrides httpedge.DefaultLimits when non-nil.
	Limits *httpedge.Limits
	// Store, if not nil, is an open store used instead of opening the
	// configured one (for example a test's own PostgreSQL database). The
	// server owns it either way: Close closes it.
	Store store.Store
	// Reload, if not nil, makes the in-process gateway reload its DNS
	// blocklists each time it delivers (the command line sends on SIGHUP).
	Reload <-chan struct{}
}

// Server is an assembled control server.
type Server struct {
	Config config.Settings
	Store  store.Store
	Vault  *vault.Vault
	// Keys seals accounts' free text under their data keys.
	Keys     *acctkey.Keys
	Accounts *accounts.Service
	Devices  *devices.Service
	Gateways *gateways.Service
	Feed     *peerfeed.Hub
	Usage    *usage.Service
	Staff    *staff.Service
	Audit    *audit.Log
	Holds    *holds.Service
	Metrics  *metrics.Registry
	Hasher   *password.Hasher
	// Notifier is how every service sends email and text messages: the
	// outbound queue, which Serve's worker delivers through Deliver.
	Notifier notify.Notifier
	// Outbox keeps the messages sent while no SMTP relay or SMS webhook
	// is configured; nil if both are.
	Outbox   *notify.Outbox
	Outbound *outbound.Queue
	// Deliver is the router to the mail relay and the SMS webhook (or the
	// file outbox) that the queue hands messages to.
	Deliver notify.Notifier
	// Handler serves the API, the portal and the console, mounted side by
	// side on one mux, behind the shared middleware.
	Handler http.Handler
	deps    Deps
	acme    acmeState // automatic TLS, see acmeTLS
	// api and web are the front ends Mount registers.
	api *api.Server
	web *web.Handler

	// Disclosures is the disclosure ledger; Processors the processor
	// register that guards outbound messages; Stats the differentially
	// private statistics.
	Disclosures *disclosures.Service
	Processors  *processors.Service
	Stats       *stats.Service

	// Inbox is the account inbox; Notices sends notices to every account;
	// Policy keeps policy versions and acceptances; Retention is the
	// retention sweeper (run by the housekeeping Jobs).
	Inbox     *inbox.Service
	Notices   *notices.Sender
	Policy    *policy.Service
	Retention *retention.Sweeper

	// Privacy handles data-subject requests.
	Privacy *privacy.Service

	// Inventory is the data inventory in force: the defaults with the
	// --retention and --kek-rotation settings applied, once, here. Every part that states or
	// enforces a retention period is given this value.
	Inventory inventory.Inventory
	// Records serves the Art. 30 record of processing to staff.
	Records *records.Service
	// Breaches is the breach register (Art. 33 and 34).
	Breaches *breaches.Service
	// Rekey rotates the key-encryption key (admin kek rotate, and the
	// scheduled job).
	Rekey *rekey.Service

	acceptor *policyAcceptor
	role     atomic.Int32 // a HousekeepingRole, while serving
}

// policyAcceptor lets accounts, built before the policy service, record
// acceptances at sign-up through it once it exists.
type policyAcceptor struct{ policy *policy.Service }

func (p *policyAcceptor) AcceptCurrent(ctx context.Context, accountID string) error {
	if p.policy == nil {
		return errs.E(errs.Unavailable, "the policy service is not ready")
	}
	return p.policy.AcceptCurrent(ctx, accountID)
}

// OpenStore opens the configured store: PostgreSQL if cfg.Database is set,
// otherwise SQLite at DATA/nitronet.db. It creates the data directory
// (mode 0700) if needed.
func OpenStore(ctx context.Context, cfg config.Settings, log *slog.Logger) (store.Store, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	pool := store.Pool{V4: cfg.V4, V6: cfg.V6}
	if cfg.Database != "" {
		return sqlstore.OpenPostgres(ctx, cfg.Database, pool, log)
	}
	return sqlstore.OpenSQLite(ctx, filepath.Join(cfg.DataDir, "nitronet.db"), pool, log)
}

// New is the composition root: it validates cfg, opens the configured
// store (or takes d.Store), and builds every part of the control server
// from them: the vault, the notifier (SMTP relay and SMS webhook, or the
// outbox), every service, and the HTTP handler. `nitronet serve` and every
// `nitronet admin` command build their server here, so they share one
// configuration and one way of sending mail. It publishes the shipped
// privacy policy if no version exists yet. The caller closes the server.
func New(ctx context.Context, cfg config.Settings, d Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	if d.Rand == nil {
		d.Rand = rand.Reader
	}
	if d.Clock == nil {
		d.Clock = time.Now
	}
	if d.Stdout == nil {
		d.Stdout = io.Discard
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	st := d.Store
	if st == nil {
		var err error
		if st, err = OpenStore(ctx, cfg, d.Logger); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	s, err := assemble(cfg, st, d)
	if err != nil {
		st.Close()
		return nil, err
	}
	if err := s.Policy.Seed(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("publish the shipped privacy policy: %w", err)
	}
	return s, nil
}

// assemble builds a server from a validated configuration on an open
// store.
func assemble(cfg config.Settings, st store.Store, d Deps) (*Server, error) {
	log := d.Logger
	v, err := vault.Open(vault.Config{Dir: cfg.Keyring, LegacyFile: cfg.KEKFile, Rand: d.Rand})
	if err != nil {
		return nil, fmt.Errorf("load key-encryption keyring: %w", err)
	}
	hasher, err := password.NewHasher(password.DefaultParams(), max(2, runtime.GOMAXPROCS(0)), d.Rand)
	if err != nil {
		return nil, err
	}
	inv, err := retention.Effective(inventory.Default(), cfg.Retention)
	if err != nil {
		return nil, err
	}
	inv = inv.WithKEKRotation(cfg.KEKRotation)
	auditLog, err := audit.New(audit.Config{Store: st, Staff: st, Clock: d.Clock})
	if err != nil {
		return nil, err
	}
	procs, err := processors.New(processors.Config{Store: st, Audit: auditLog, Inventory: inv, Clock: d.Clock, Rand: d.Rand, Logger: log})
	if err != nil {
		return nil, err
	}
	queue, deliver, outbox, err := outboundQueue(cfg, st, v, d, procs)
	if err != nil {
		return nil, err
	}
	// Restriction and objection are checked before a message is queued
	// (the caller learns of a refusal) and again, like the processor
	// guard, when the queue delivers it (a restriction recorded meanwhile
	// still stops it): see outboundQueue.
	n := processing.Guard(queue, st, log)
	pols := &policyAcceptor{} // the policy service is built later, on accounts
	keys := acctkey.New(v, st)
	acc, err := accounts.New(accounts.Config{
		Store: st, Vault: v, Hasher: hasher, Notifier: n, Audit: auditLog, Logger: log, Clock: d.Clock, Rand: d.Rand,
		MobileRegion: cfg.MobileRegion, SessionTTL: cfg.SessionTTL, PortalURL: cfg.PortalURL, Policies: pols, Defer: queue,
	})
	if err != nil {
		return nil, err
	}
	for typ, h := range acc.Handlers() {
		queue.Handle(typ, h)
	}
	recheck := time.Second
	if r, ok := st.(replicaStore); ok && r.Replicated() {
		recheck = replicatedRecheck // Serve listens for notifications
	}
	feed, err := peerfeed.New(peerfeed.Config{Store: st, Recheck: recheck})
	if err != nil {
		return nil, err
	}
	gws, err := gateways.New(gateways.Config{Store: st, Audit: auditLog, Logger: log, Clock: d.Clock, Rand: d.Rand})
	if err != nil {
		return nil, err
	}
	dev, err := devices.New(devices.Config{Store: st, Keys: keys, Logger: log, Clock: d.Clock, Rand: d.Rand,
		Limit: cfg.DeviceLimit, OnPeerChange: feed.Notify, Gateways: gws, DNS: cfg.GatewayAddrs(), Pool6: cfg.V6})
	if err != nil {
		return nil, err
	}
	stf, err := staff.New(staff.Config{Store: st, Hasher: hasher, Vault: v, Audit: auditLog, Logger: log, Clock: d.Clock, Rand: d.Rand})
	if err != nil {
		return nil, err
	}
	use, err := usage.New(usage.Config{Store: st, Mode: cfg.UsageRecording, Clock: d.Clock, Logger: log})
	if err != nil {
		return nil, err
	}
	hs, err := holds.New(holds.Config{Store: st, Audit: auditLog, Clock: d.Clock, Rand: d.Rand})
	if err != nil {
		return nil, err
	}
	s := &Server{acceptor: pols, Config: cfg, Inventory: inv, Store: st, Vault: v, Keys: keys, Accounts: acc, Devices: dev, Gateways: gws, Feed: feed, Usage: use,
		Staff: stf, Audit: auditLog, Hasher: hasher, Notifier: n, Outbox: outbox, Outbound: queue, Deliver: deliver, deps: d, Holds: hs,
		Metrics: metrics.New()}
	if err := s.assemblePolicyInbox(st); err != nil {
		return nil, err
	}
	if err := s.assemblePrivacyRecords(st, procs); err != nil {
		return nil, err
	}
	if err := s.assemblePrivacy(st); err != nil {
		return nil, err
	}
	if s.Rekey, err = rekey.New(rekey.Config{Store: st, Vault: v, Accounts: acc, Staff: stf, Queue: queue, Audit: auditLog,
		Logger: log, Clock: d.Clock, Rand: d.Rand, Every: cfg.KEKRotation, Settle: cfg.KEKSettle}); err != nil {
		return nil, err
	}
	s.outboundGauge()
	s.liveSessionsGauge()
	s.replicaGauges()
	if s.Handler, err = s.handler(); err != nil {
		return nil, err
	}
	return s, nil
}

// outboundQueue returns the outbound queue every service sends through,
// the router (Notifier) its worker delivers to, and the file outbox that
// router writes to (nil if a relay and a webhook are configured).
func outboundQueue(cfg config.Settings, st store.Store, v *vault.Vault, d Deps, procs processors.Register) (*outbound.Queue, notify.Notifier, *notify.Outbox, error) {
	deliver, outbox, err := Notifier(cfg, d, procs)
	if err != nil {
		return nil, nil, nil, err
	}
	deliver = processing.Guard(deliver, st, d.Logger)
	queue, err := outbound.New(outbound.Config{Store: st, Vault: v, Deliver: deliver, Logger: d.Logger, Clock: d.Clock, Rand: d.Rand})
	if err != nil {
		return nil, nil, nil, err
	}
	return queue, deliver, outbox, nil
}

// outboundGauge registers the metric of jobs waiting in the outbound
// queue: a count only.
func (s *Server) outboundGauge() {
	s.Metrics.Gauge("nitronet_outbound_queued", "Messages and requests waiting in the outbound queue (a count only).", func() []metrics.Sample {
		n, err := s.Store.CountOutbound(context.Background())
		if err != nil {
			return nil
		}
		return []metrics.Sample{{Value: float64(n)}}
	})
}

// liveSessionsGauge registers the metric of open VPN sessions by gateway,
// from s.Usage: a count only.
func (s *Server) liveSessionsGauge() {
	s.Metrics.Gauge("nitronet_live_sessions", "Open VPN sessions, by gateway (a count only).", func() []metrics.Sample {
		var out []metrics.Sample
		for gw, n := range s.Usage.Live() {
			out = append(out, metrics.Sample{Labels: map[string]string{"gateway": gw}, Value: float64(n)})
		}
		return out
	})
}

// handler builds the front ends and mounts them (Mount) on one mux,
// behind the shared middleware (edge: the access log of method, route
// pattern, status and duration, the baseline security headers and panic
// recovery) and the trusted proxies' client addresses.
func (s *Server) handler() (http.Handler, error) {
	d, cfg := s.deps, s.Config
	limits := httpedge.DefaultLimits()
	if d.Limits != nil {
		limits = *d.Limits
	}
	// One set of rate limiters for the API, the portal and the console,
	// and on PostgreSQL for every replica.
	deviceKey := s.Vault.DeriveKey("login device tokens")
	limiters, err := httpedge.NewLimiters(limits, deviceKey, d.Clock, d.Rand)
	if rs, ok := s.replicas(); ok {
		limiters, err = httpedge.NewSharedLimiters(limits, httpedge.Shared{Spender: rs, Keeper: rs,
			Secret: s.Vault.DeriveKey("shared rate limit keys"), Logger: d.Logger, DeviceKey: deviceKey}, d.Clock, d.Rand)
	}
	if err != nil {
		return nil, err
	}
	apiSrv, err := api.New(api.Config{
		Accounts: s.Accounts, Devices: s.Devices, Gateways: s.Gateways, Feed: s.Feed, Usage: s.Usage,
		Privacy: s.Privacy, Inbox: s.Inbox, Policy: s.Policy,
		Logger: d.Logger, Clock: d.Clock, Rand: d.Rand, Limiters: limiters,
	})
	if err != nil {
		return nil, err
	}
	portal, err := web.New(web.Config{
		Accounts: s.Accounts, Devices: s.Devices, Gateways: s.Gateways, Usage: s.Usage,
		Policy: s.Policy, Privacy: s.Privacy, Inbox: s.Inbox, Staff: s.Staff, Holds: s.Holds,
		Disclosures: s.Disclosures, Retention: s.Retention, Audit: s.Audit,
		Inventory: s.Inventory, Controller: s.Config.Controller,
		Logger: d.Logger, Clock: d.Clock, Rand: d.Rand, Limiters: limiters,
		Secure:  cfg.SecureOrigin(),
		CSRFKey: s.Vault.DeriveKey("web portal csrf"),

		TransparencyKey: func() (ed25519.PrivateKey, error) { return s.TransparencyKey("") },
		Records:         s.Records,
		Breaches:        s.Breaches,
	})
	if err != nil {
		return nil, err
	}
	s.api, s.web = apiSrv, portal
	mux := http.NewServeMux()
	s.Mount(mux)
	return s.edge(httpedge.TrustProxies(cfg.Transport.TrustedProxies, mux)), nil
}

// Mount registers every route of the main listener on m: the API, the
// portal and the console side by side, and GET /metrics when a metrics
// token is set. Handler serves exactly these routes, on an http.ServeMux
// behind the shared middleware; a test may pass a Mux that records them.
func (s *Server) Mount(m httpedge.Mux) {
	s.api.Register(m)
	s.web.Register(m)
	if s.Config.Transport.MetricsToken != "" {
		m.Handle("GET /metrics", s.metricsHandler())
	}
}

// edge wraps h in the middleware every listener shares: the access log
// (method, route pattern, status, duration), the baseline security headers
// and panic recovery.
func (s *Server) edge(h http.Handler) http.Handler {
	d := s.deps
	return httpedge.AccessLog(d.Logger, d.Clock, httpedge.BaselineHeaders(httpedge.Recover(d.Logger, h)))
}

// assemblePrivacyRecords builds the disclosure ledger, the processor
// register, the statistics and the record of processing on st. It needs s.Audit, and
// s.Inbox for disclosure notices: without an inbox, NotifyLapsedGags
// reports Unavailable.
func (s *Server) assemblePrivacyRecords(st store.Store, procs *processors.Service) error {
	d := s.deps
	var box disclosures.Inbox
	if s.Inbox != nil {
		box = s.Inbox
	}
	dis, err := disclosures.New(disclosures.Config{Store: st, Accounts: st, Audit: s.Audit, Inbox: box,
		Inventory: s.Inventory, Controller: s.Config.Controller, Logger: d.Logger, Clock: d.Clock, Rand: d.Rand})
	if err != nil {
		return err
	}
	sts, err := stats.New(stats.Config{Store: st, Audit: s.Audit, Clock: d.Clock, Rand: d.Rand, Budget: s.Config.StatsBudget})
	if err != nil {
		return err
	}
	rec, err := records.New(records.Config{Inventory: s.Inventory, Controller: s.Config.Controller, Audit: s.Audit})
	if err != nil {
		return err
	}
	s.Disclosures, s.Processors, s.Stats, s.Records = dis, procs, sts, rec
	return nil
}

// Notifier builds the outgoing-message router: SMTP and the SMS webhook
// when configured, and otherwise the file outbox in DATA/outbox, which it
// also returns (nil if unused). The SMTP relay and the SMS webhook are
// processors: every message to them is checked against reg first
// (processors.Guard). The outbox is local and is not guarded.
func Notifier(cfg config.Settings, d Deps, reg processors.Register) (notify.Notifier, *notify.Outbox, error) {
	var r notify.Router
	outboxDir := filepath.Join(cfg.DataDir, "outbox")
	var box *notify.Outbox
	var outbox notify.Notifier
	getOutbox := func() (notify.Notifier, error) {
		if outbox == nil {
			o, err := notify.NewOutbox(notify.OutboxConfig{Dir: outboxDir, Clock: d.Clock, Rand: d.Rand})
			if err != nil {
				return nil, err
			}
			box, outbox = o, notify.MaskRecipients(o)
		}
		return outbox, nil
	}
	if cfg.SMTPHost != "" {
		s, err := notify.NewSMTP(notify.SMTPConfig{
			Host: cfg.SMTPHost, Port: cfg.SMTPPort, Username: cfg.SMTPUsername, Password: cfg.SMTPPassword,
			From: cfg.SMTPFrom, TLSPolicy: cfg.SMTPTLS, Timeout: 30 * time.Second,
		}, d.Logger)
		if err != nil {
			return nil, nil, fmt.Errorf("smtp: %w", err)
		}
		r.Email = processors.Guard(s, reg, d.Logger)
	} else {
		o, err := getOutbox()
		if err != nil {
			return nil, nil, err
		}
		r.Email = o
		fmt.Fprintf(d.Stdout, "No SMTP relay configured: email is written to %s\n", outboxDir)
	}
	if cfg.SMSWebhook != "" {
		w, err := notify.NewWebhook(notify.WebhookConfig{URL: cfg.SMSWebhook, Token: cfg.SMSWebhookToken,
			Client: &http.Client{Timeout: 30 * time.Second}})
		if err != nil {
			return nil, nil, fmt.Errorf("sms webhook: %w", err)
		}
		r.SMS = processors.Guard(w, reg, d.Logger)
	} else {
		o, err := getOutbox()
		if err != nil {
			return nil, nil, err
		}
		r.SMS = o
		fmt.Fprintf(d.Stdout, "No SMS webhook configured: SMS is written to %s\n", outboxDir)
	}
	return r, box, nil
}

// Jobs returns the periodic housekeeping `serve` runs, each as
// staff.System and so authorised and audited by its service like a staff
// action: the retention sweep, the notices of lapsed gag orders, the
// completion of erasures whose legal hold has ended, the resumption of
// notices to every account that an interrupted command left unfinished,
// and the scheduled key-encryption-key rotation.
// On PostgreSQL, the shared rate-limit budgets that are full again are
// deleted too. Each reports counts only.
func (s *Server) Jobs() []jobs.Job {
	sys := staff.System()
	return append([]jobs.Job{
		{Name: "retention sweep", Every: retention.DefaultInterval, Run: func(ctx context.Context) (int64, error) {
			run, err := s.Retention.RunNow(ctx, sys)
			if err != nil {
				return 0, err
			}
			var n int64
			for _, c := range run.Counts {
				n += c.Deleted + c.Closed
			}
			return n, nil
		}},
		{Name: "lapsed gag notices", Every: time.Hour, Run: func(ctx context.Context) (int64, error) {
			n, err := s.Disclosures.NotifyLapsedGags(ctx, sys)
			return int64(n), err
		}},
		// Erasures kept back by a legal hold finish once the hold is
		// released or lapses.
		{Name: "resume erasures", Every: time.Hour, Run: func(ctx context.Context) (int64, error) {
			n, err := s.Privacy.ResumeErasures(ctx, sys)
			return int64(n), err
		}},
		// Extension notices that could not be delivered are retried with
		// a growing delay until they are (Art. 12(3)).
		{Name: "extension notices", Every: privacy.RetryEvery, Run: func(ctx context.Context) (int64, error) {
			n, err := s.Privacy.RetryExtensionNotices(ctx, sys)
			return int64(n), err
		}},
		{Name: "resume notices", Every: time.Hour, Run: func(ctx context.Context) (int64, error) {
			n, err := s.Policy.ResumeNotices(ctx, sys, nil)
			return int64(n), err
		}},
		// Starts a rotation when the primary KEK is --kek-rotation old,
		// carries on one in progress, and destroys the old KEK when done.
		{Name: "kek rotation", Every: rekey.JobEvery, Run: func(ctx context.Context) (int64, error) {
			return s.Rekey.Scheduled(ctx, sys)
		}},
		// Free text written before it was sealed under the account's
		// key: sealed at the first run after an upgrade, then whatever
		// an older replica still writes.
		{Name: "seal plaintext", Every: 24 * time.Hour, Run: s.SealPlaintext},
	}, s.replicaJobs()...)
}

// SealPlaintext seals the free text that versions before sealing wrote in
// plaintext (device names, inbox messages, privacy request texts) under
// each account's key, and empties what erased accounts left; it indexes
// the names of devices written before names were unique per account
// (devices.Service.IndexNames). It returns how many records it changed. Records it could not seal (their account's
// key would not open) are counted in the log and left for the next run;
// devices it could not index for that reason are logged once by account
// and deferred (docs/erasure.md). It reads only the records left to do,
// and is resumable and safe to run at any time.
func (s *Server) SealPlaintext(ctx context.Context) (int64, error) {
	var total int64
	for _, job := range []struct {
		what string
		run  func(context.Context) (int, int, error)
	}{
		{"device names", s.Devices.SealPlaintext},
		// Devices written before names were indexed (unique per
		// account): indexed, duplicates renamed "NAME (N)".
		{"device name indexes", s.Devices.IndexNames},
		{"inbox messages", s.Inbox.SealPlaintext},
		{"privacy request texts", s.Privacy.SealPlaintext},
	} {
		done, skipped, err := job.run(ctx)
		total += int64(done)
		if skipped > 0 {
			s.deps.Logger.Warn("plaintext not sealed", "what", job.what, "records", skipped)
		}
		if err != nil {
			return total, fmt.Errorf("seal %s: %w", job.what, err)
		}
	}
	return total, nil
}

// TransparencyKey returns the Ed25519 key that signs transparency
// reports, from file, or from DATA/transparency.key when file is empty. A
// missing file is created with a new key (mode 0600).
func (s *Server) TransparencyKey(file string) (ed25519.PrivateKey, error) {
	if file == "" {
		file = filepath.Join(s.Config.DataDir, "transparency.key")
	}
	return transparency.LoadOrCreateKey(file, s.deps.Rand)
}

// closeDrain bounds how long Close spends delivering queued jobs.
const closeDrain = 30 * time.Second

// Close delivers the outbound jobs that are due (spending at most 30
// seconds), so that what an admin command queued goes out through the
// configured relay before the command exits, even with no `serve`
// running; then it releases the server's resources.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), closeDrain)
	defer cancel()
	if _, err := s.Outbound.Drain(ctx); err != nil {
		s.deps.Logger.Warn("outbound queue not drained at close; serve's worker will finish it", "err", err)
	}
	return s.Store.Close()
}

// Serve serves HTTP on ln (HTTPS with --tls-cert or --acme-domain) until
// ctx ends, then shuts down gracefully,
// giving in-flight requests up to 10 seconds. Meanwhile it runs the
// housekeeping Jobs, the first time at once (which finishes erasures a
// crash interrupted): on PostgreSQL only while this replica holds the
// housekeeping lock, and it listens for other replicas' peer changes (see
// background). Every replica also runs the outbound queue's worker, which
// sends what every service queued (this process's jobs at once, other
// processes' within a few seconds; claims are leases, so replicas never
// send one job twice).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// Stop the background work on every return, including a serve error
	// before ctx ends.
	defer s.background(ctx)()
	queueCtx, stopQueue := context.WithCancel(ctx)
	queueDone := make(chan struct{})
	go func() { s.Outbound.Run(queueCtx); close(queueDone) }()
	defer func() { stopQueue(); <-queueDone }()
	hs := &http.Server{
		Handler:           s.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      90 * time.Second, // long-polls hold up to 60 s
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		// net/http's own error log names client addresses (for example
		// "TLS handshake error from ADDR"); it must never be written.
		ErrorLog:    log.New(io.Discard, "", 0),
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	acmeTLS, err := s.acmeTLS()
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	switch {
	case s.Config.TLSCert != "":
		go func() { errc <- hs.ServeTLS(ln, s.Config.TLSCert, s.Config.TLSKey) }()
	case acmeTLS != nil:
		hs.TLSConfig = acmeTLS
		go func() { errc <- hs.ServeTLS(ln, "", "") }()
	default:
		go func() { errc <- hs.Serve(ln) }()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
