package server

import (
	"context"
	"time"

	"github.com/nitronet/nitronet/internal/breaches"
	"github.com/nitronet/nitronet/internal/metrics"
	"github.com/nitronet/nitronet/internal/privacy"
	"github.com/nitronet/nitronet/internal/store"
)

// assemblePrivacy builds the privacy-request service on st, with the
// inbox, policy acceptances, disclosures and the processors that received
// the account's data as export sections, registers the overdue-requests
// gauge, and then builds the breach register (assembleBreaches). It needs
// s.Accounts, s.Holds, s.Audit, s.Notifier, s.Notices, s.Feed, s.Inbox,
// s.Policy, s.Disclosures, s.Processors and s.Inventory.
func (s *Server) assemblePrivacy(st store.Store) error {
	d := s.deps
	var sources []privacy.ExportSource
	var inbox privacy.Inbox
	if s.Inbox != nil {
		inbox = s.Inbox
		sources = append(sources, s.Inbox)
	}
	if s.Policy != nil {
		sources = append(sources, s.Policy)
	}
	if s.Disclosures != nil {
		sources = append(sources, s.Disclosures)
	}
	if s.Processors != nil {
		// Which processors received the account's data (Art. 15(1)(c)).
		sources = append(sources, s.Processors)
	}
	var outbox privacy.Outbox
	if s.Outbox != nil {
		outbox = s.Outbox
	}
	svc, err := privacy.New(privacy.Config{
		Store: st, Accounts: s.Accounts, Keys: s.Keys, Holds: s.Holds, Audit: s.Audit, Notifier: s.Notifier, Queue: s.Outbound, Outbox: outbox,
		Inbox: inbox, Sources: sources, OnPeerChange: s.Feed.Notify, UsageRecording: s.Config.UsageRecording,
		Inventory: s.Inventory, Controller: s.Config.Controller,
		Logger: d.Logger, Clock: d.Clock, Rand: d.Rand,
	})
	if err != nil {
		return err
	}
	s.Privacy = svc
	// Extension notices go through the outbound queue with receipts, so
	// a notice counts as delivered only once the relay accepted it.
	s.Outbound.Report(privacy.ExtensionReceiptOwner, svc.ExtensionOutcome)
	s.Metrics.Gauge("nitronet_privacy_requests_overdue",
		"Privacy requests neither answered nor extended by their deadline.", func() []metrics.Sample {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			n, err := svc.OverdueCount(ctx)
			if err != nil {
				d.Logger.Warn("count overdue privacy requests", "err", err)
				return nil
			}
			return []metrics.Sample{{Value: float64(n)}}
		})
	s.Metrics.Gauge("nitronet_privacy_extension_notices_failing",
		"Notices of deadline extensions not delivered to the user after several attempts (still retried).", func() []metrics.Sample {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			n, err := svc.FailingExtensionNotices(ctx)
			if err != nil {
				d.Logger.Warn("count failing extension notices", "err", err)
				return nil
			}
			return []metrics.Sample{{Value: float64(n)}}
		})
	return s.assembleBreaches(st)
}

// assembleBreaches builds the breach register on st, its notices going
// through s.Notices, and registers the overdue-breaches gauge. It needs
// s.Notices, s.Audit and s.Inventory.
func (s *Server) assembleBreaches(st store.Store) error {
	d := s.deps
	svc, err := breaches.New(breaches.Config{Store: st, Notices: s.Notices, Audit: s.Audit, Inventory: s.Inventory,
		Controller: s.Config.Controller, Logger: d.Logger, Clock: d.Clock, Rand: d.Rand})
	if err != nil {
		return err
	}
	s.Breaches = svc
	s.Metrics.Gauge("nitronet_breaches_overdue",
		"Open personal data breaches whose supervisory authority was not notified within 72 hours of detection (a count only).",
		func() []metrics.Sample {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			n, err := svc.OverdueCount(ctx)
			if err != nil {
				d.Logger.Warn("count overdue breaches", "err", err)
				return nil
			}
			return []metrics.Sample{{Value: float64(n)}}
		})
	return nil
}
