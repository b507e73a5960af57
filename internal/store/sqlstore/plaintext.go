package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
)

// plainKind describes where one kind of record keeps plaintext free text.
type plainKind struct {
	table   string
	account string   // the account column
	fields  []string // the plaintext columns
	meta    []string // columns read for PlainText.Meta
	sealed  string   // the sealed column
	// where selects the records (alias t) holding plaintext free text;
	// it has, as terms ANDed with the rest, the condition of the kind's
	// partial index, which the planners only use when they find it so.
	where string
}

// query returns the statement that reads a batch of k's records holding
// plaintext: ID, account, fields and meta, after $1, at most $2. It reads
// them through the kind's partial index (devices_plain_name, inbox_plain,
// privacy_requests_plain; migration 00030), whose condition is a term of
// where, so that with nothing left to seal it costs an index probe.
func (k plainKind) query() string {
	cols := append(slices.Clone(k.fields), k.meta...)
	return `SELECT t.id, COALESCE(t.` + k.account + `, ''), t.` + strings.Join(cols, ", t.") + `
		FROM ` + k.table + ` t WHERE t.id > $1 AND (` + k.where + `) ORDER BY t.id LIMIT $2`
}

// plainKinds is the allowlist of store.Plain* kinds.
func plainKinds() map[string]plainKind {
	return map[string]plainKind{
		store.PlainDevices: {table: "devices", account: "account_id", fields: []string{"name"}, sealed: "name_sealed",
			where: `t.name <> ''`},
		store.PlainInbox: {table: "inbox", account: "account_id", fields: []string{"subject", "body"}, sealed: "sealed",
			where: `t.notice_run IS NULL AND t.sealed IS NULL AND (t.subject <> '' OR t.body <> '')`},
		// A request of an account is sealed whatever its texts (its
		// outcome may quote a staff note); an erased account's request
		// only if it keeps some text, besides an erasure's outcome. A
		// request from outside the app without an account (which had
		// none, or was erased, which emptied its texts) has no key to
		// seal under and keeps the staff's note.
		store.PlainRequests: {table: "privacy_requests", account: "account_id", sealed: "sealed",
			fields: []string{"details", "extended_reason", "denied_reason", "outcome"}, meta: []string{"type", "status"},
			where: `t.sealed IS NULL AND (t.account_id IS NOT NULL OR (t.channel = 'app' AND (t.details <> ''
				OR t.extended_reason <> '' OR t.denied_reason <> '' OR (t.outcome <> '' AND t.type <> 'erasure'))))`},
	}
}

// PlainTexts implements store.PlainTextStore.
func (s *Store) PlainTexts(ctx context.Context, kind, after string, limit int) ([]store.PlainText, error) {
	k, ok := plainKinds()[kind]
	if !ok {
		return nil, errs.E(errs.Invalid, "unknown kind of plaintext %q", kind)
	}
	if limit < 1 {
		return nil, errs.E(errs.Invalid, "limit must be positive")
	}
	var out []store.PlainText
	err := s.read(ctx, "plaintext "+kind, func(tx *sql.Tx) error {
		cols := append(slices.Clone(k.fields), k.meta...)
		rows, err := tx.QueryContext(ctx, k.query(), after, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			p := store.PlainText{Kind: kind, Fields: map[string]string{}}
			vals := make([]string, len(cols))
			dst := []any{&p.ID, &p.AccountID}
			for i := range vals {
				dst = append(dst, &vals[i])
			}
			if err := rows.Scan(dst...); err != nil {
				return err
			}
			for i, f := range k.fields {
				p.Fields[f] = vals[i]
			}
			if len(k.meta) > 0 {
				p.Meta = map[string]string{}
				for i, m := range k.meta {
					p.Meta[m] = vals[len(k.fields)+i]
				}
			}
			out = append(out, p)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SealPlainTexts implements store.PlainTextStore.
func (s *Store) SealPlainTexts(ctx context.Context, ss []store.Sealing) (int, error) {
	kinds := plainKinds()
	for _, x := range ss {
		k, ok := kinds[x.Kind]
		if !ok {
			return 0, errs.E(errs.Invalid, "unknown kind of plaintext %q", x.Kind)
		}
		if x.Sealed == nil && x.Kind != store.PlainRequests {
			return 0, errs.E(errs.Invalid, "%s %s: sealed text required", x.Kind, x.ID)
		}
		for _, f := range k.fields {
			if _, ok := x.Fields[f]; !ok {
				return 0, errs.E(errs.Invalid, "%s %s: field %s missing", x.Kind, x.ID, f)
			}
		}
		for _, m := range k.meta {
			if _, ok := x.Meta[m]; !ok {
				return 0, errs.E(errs.Invalid, "%s %s: %s missing", x.Kind, x.ID, m)
			}
		}
		for f := range x.Plain {
			if !slices.Contains(k.fields, f) {
				return 0, errs.E(errs.Invalid, "%s %s: %s is not a plaintext field", x.Kind, x.ID, f)
			}
		}
	}
	n := 0
	err := s.write(ctx, "seal plaintext", func(tx *sql.Tx) error {
		n = 0
		for _, x := range ss {
			k := kinds[x.Kind]
			set := []string{k.sealed + " = $1"}
			cond := []string{"id = $2", k.sealed + " IS NULL"}
			args := []any{nullBytes(x.Sealed), x.ID}
			for _, f := range k.fields {
				args = append(args, x.Plain[f])
				set = append(set, fmt.Sprintf("%s = $%d", f, len(args)))
				args = append(args, x.Fields[f])
				cond = append(cond, fmt.Sprintf("%s = $%d", f, len(args)))
			}
			for _, m := range k.meta {
				args = append(args, x.Meta[m])
				cond = append(cond, fmt.Sprintf("%s = $%d", m, len(args)))
			}
			res, err := tx.ExecContext(ctx, `UPDATE `+k.table+` SET `+strings.Join(set, ", ")+
				` WHERE `+strings.Join(cond, " AND "), args...)
			if err != nil {
				return fmt.Errorf("%s %s: %w", x.Kind, x.ID, err)
			}
			m, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += int(m)
		}
		return nil
	})
	return n, err
}
