package store

import "context"

// The kinds of record whose free text is sealed under the account's data
// key (package acctkey), named by their table.
const (
	PlainDevices  = "devices"          // the device name (column name)
	PlainInbox    = "inbox"            // a per-account message (subject, body)
	PlainRequests = "privacy_requests" // details, extended_reason, denied_reason, outcome
)

// PlainText is a record that still holds free text in plaintext, written
// before text of its kind was sealed.
type PlainText struct {
	Kind string // PlainDevices, PlainInbox or PlainRequests
	ID   string
	// AccountID is the record's account; empty for a privacy request
	// whose account was erased, which has no key left to seal with.
	AccountID string
	// Fields maps each plaintext column of the record to its text.
	Fields map[string]string
	// Meta holds columns that say what the text is (a request's type and
	// status), for the sealer to decide; they are not changed.
	Meta map[string]string
}

// Sealing replaces the plaintext of a record by its sealed form.
type Sealing struct {
	PlainText
	// Sealed is the record's text sealed under the account's data key;
	// nil only changes the plaintext (an erased account's request).
	Sealed []byte
	// Plain gives what plaintext fields keep (a text without personal
	// data); every field not in it is emptied.
	Plain map[string]string
}

// PlainTextStore lets the sealing job seal free text written before it
// was sealed. It is part of Store.
type PlainTextStore interface {
	// PlainTexts returns up to limit records of kind, with IDs greater
	// than after in ID order, that hold plaintext free text: devices with
	// a name, per-account inbox messages (not a notice run's) with a
	// subject or body, and privacy requests not yet sealed (an erased
	// account's only if it keeps details, reasons or, unless it is the
	// erasure, an outcome). An unknown kind is Invalid.
	PlainTexts(ctx context.Context, kind, after string, limit int) ([]PlainText, error)
	// SealPlainTexts stores each Sealed as the sealed text of its record
	// and sets the record's plaintext fields to Plain (empty unless
	// given), in one transaction, for the records that still hold exactly
	// the Fields and Meta given and no sealed text (others changed
	// meanwhile and are left alone). It returns how many records it
	// changed. A device or message needs Sealed (Invalid otherwise).
	SealPlainTexts(ctx context.Context, ss []Sealing) (int, error)
}
