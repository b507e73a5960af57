package server

import (
	"path/filepath"
	"time"

	"github.com/nitronet/nitronet/internal/inbox"
	"github.com/nitronet/nitronet/internal/notices"
	"github.com/nitronet/nitronet/internal/notify"
	"github.com/nitronet/nitronet/internal/policy"
	"github.com/nitronet/nitronet/internal/retention"
	"github.com/nitronet/nitronet/internal/store"
)

// assemblePolicyInbox builds the inbox, the notice sender, the policy
// service and the retention sweeper on st. It needs s.Accounts,
// s.Notifier, s.Audit and s.Inventory. The sweeper is built but not
// started: whoever serves calls s.Retention.Run.
func (s *Server) assemblePolicyInbox(st store.Store) error {
	d := s.deps
	box, err := inbox.New(inbox.Config{Store: st, Keys: s.Keys, Clock: d.Clock, Rand: d.Rand, Flags: st})
	if err != nil {
		return err
	}
	s.Inbox = box
	// Notice emails go through the outbound queue with receipts, so a
	// run records an email as sent only once the relay accepted it.
	snd, err := notices.New(notices.Config{Store: st, Notifier: s.Notifier, Queue: s.Outbound, Contacts: s.Accounts.Contacts,
		Logger: d.Logger, Clock: d.Clock, Rand: d.Rand, Flags: st})
	if err != nil {
		return err
	}
	s.Outbound.Report(notices.ReceiptOwner, snd.Outcome)
	s.Notices = snd
	if s.Policy, err = policy.New(policy.Config{Store: st, Notices: snd, Audit: s.Audit, Logger: d.Logger,
		Clock: d.Clock, Rand: d.Rand, PortalURL: s.Config.PortalURL}); err != nil {
		return err
	}
	s.acceptor.policy = s.Policy
	outbox := filepath.Join(s.Config.DataDir, "outbox")
	s.Retention, err = retention.New(retention.Config{Store: st, Holds: st, Inventory: s.Inventory,
		Audit: s.Audit, Logger: d.Logger, Clock: d.Clock, Rand: d.Rand,
		Outbox: func(before time.Time) (int64, error) { return notify.PruneOutbox(outbox, before) }})
	return err
}
