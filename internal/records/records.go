// Package records gives staff the record of processing activities of GDPR
// Art. 30, generated from the data inventory in force. Reading it is a
// staff action (staff.ActRecordsView), authorised and audited here, so the
// console and `nitronet admin records` show the same record under the same
// rule.
package records

import (
	"context"
	"errors"

	"github.com/nitronet/nitronet/internal/controller"
	"github.com/nitronet/nitronet/internal/inventory"
	"github.com/nitronet/nitronet/internal/staff"
)

// Config holds the service's dependencies.
type Config struct {
	// Inventory is the data inventory in force (with the retention the
	// server applies).
	Inventory inventory.Inventory
	// Controller is who runs the service; it may be empty (not
	// configured), which the record says.
	Controller controller.Identity
	Audit      staff.Auditor
}

// Service serves the record of processing. It is safe for concurrent use.
type Service struct{ cfg Config }

// New returns a Service. Inventory and Audit are required.
func New(cfg Config) (*Service, error) {
	if cfg.Inventory == nil || cfg.Audit == nil {
		return nil, errors.New("records: missing dependency")
	}
	return &Service{cfg: cfg}, nil
}

// Record returns the Art. 30 record of processing for by, who must be
// allowed staff.ActRecordsView; the read is audited. The record holds no
// personal data.
func (s *Service) Record(ctx context.Context, by staff.Principal) (inventory.RoP, error) {
	if err := staff.Authorize(by, staff.ActRecordsView); err != nil {
		return inventory.RoP{}, err
	}
	if err := s.cfg.Audit.Record(ctx, by.ID, by.Role, staff.ActRecordsView, "records", "viewed the record of processing"); err != nil {
		return inventory.RoP{}, err
	}
	return s.cfg.Inventory.RecordOfProcessing(s.cfg.Controller), nil
}
