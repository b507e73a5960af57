package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
)

const gatewayColumns = `id, region, endpoint, public_key, enroll_hash, credential_hash, created_at, last_seen, tcp_port, relays`

func scanGateway(row interface{ Scan(...any) error }) (*store.Gateway, error) {
	var g store.Gateway
	var key sql.NullString
	var created int64
	var seen sql.NullInt64
	var relays string
	if err := row.Scan(&g.ID, &g.Region, &g.Endpoint, &key, &g.EnrollHash, &g.CredentialHash,
		&created, &seen, &g.TCPPort, &relays); err != nil {
		return nil, err
	}
	var err error
	if g.Relays, err = decodeRelays(relays); err != nil {
		return nil, err
	}
	g.PublicKey = key.String
	g.CreatedAt = fromUnix(created)
	g.LastSeen = nullTime(seen)
	return &g, nil
}

// CreateGateway inserts g, which must have an ID and either an EnrollHash
// or, for a gateway created enrolled, a PublicKey and a CredentialHash
// (otherwise Invalid). g.PublicKey and g.CredentialHash are normally empty
// until EnrollGateway; if set they are stored. It returns Conflict if the
// ID, enrollment hash, public key or credential hash is taken.
func (s *Store) CreateGateway(ctx context.Context, g *store.Gateway) error {
	if g.ID == "" {
		return errs.E(errs.Invalid, "gateway id is empty")
	}
	if len(g.EnrollHash) == 0 && (g.PublicKey == "" || len(g.CredentialHash) == 0) {
		return errs.E(errs.Invalid, "gateway has neither an enrollment hash nor a key and credential")
	}
	if g.PublicKey != "" {
		if err := checkPublicKey(g.PublicKey); err != nil {
			return err
		}
	}
	var seen any
	if g.LastSeen != nil {
		seen = unix(*g.LastSeen)
	}
	relays, err := encodeRelays(g.Relays)
	if err != nil {
		return err
	}
	return s.write(ctx, "create gateway", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO gateways (`+gatewayColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			g.ID, g.Region, g.Endpoint, nullString(g.PublicKey), nullBytes(g.EnrollHash),
			nullBytes(g.CredentialHash), unix(g.CreatedAt), seen, g.TCPPort, relays)
		return mapErr(err, "gateway already exists")
	})
}

// EnrollGateway consumes the enrollment token with enrollHash: in one
// statement it clears EnrollHash and records publicKey and credentialHash,
// then returns the gateway. Only one of several concurrent callers with the
// same token succeeds. A used or unknown token is Unauthenticated; a
// malformed key or empty credential hash is Invalid; a public key or
// credential another gateway has is Conflict.
func (s *Store) EnrollGateway(ctx context.Context, enrollHash []byte, publicKey string, credentialHash []byte) (*store.Gateway, error) {
	if len(enrollHash) == 0 {
		return nil, errs.E(errs.Unauthenticated, "invalid enrollment token")
	}
	if err := checkPublicKey(publicKey); err != nil {
		return nil, err
	}
	if len(credentialHash) == 0 {
		return nil, errs.E(errs.Invalid, "gateway credential hash is empty")
	}
	var g *store.Gateway
	err := s.write(ctx, "enroll gateway", func(tx *sql.Tx) error {
		var err error
		g, err = scanGateway(tx.QueryRowContext(ctx, `UPDATE gateways
			SET enroll_hash = NULL, public_key = $1, credential_hash = $2
			WHERE enroll_hash = $3 RETURNING `+gatewayColumns, publicKey, credentialHash, enrollHash))
		if errors.Is(err, sql.ErrNoRows) {
			return errs.E(errs.Unauthenticated, "invalid enrollment token")
		}
		return mapErr(err, "gateway public key or credential already in use")
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

// GatewayByCredential returns the enrolled gateway with that credential
// hash, or NotFound.
func (s *Store) GatewayByCredential(ctx context.Context, credentialHash []byte) (*store.Gateway, error) {
	if len(credentialHash) == 0 {
		return nil, errs.E(errs.NotFound, "gateway not found")
	}
	var g *store.Gateway
	err := s.read(ctx, "gateway by credential", func(tx *sql.Tx) error {
		var err error
		g, err = scanGateway(tx.QueryRowContext(ctx, `SELECT `+gatewayColumns+` FROM gateways
			WHERE credential_hash = $1`, credentialHash))
		return notFound(err, "gateway not found")
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

// Gateways lists all gateways, oldest first (ties in insertion order).
func (s *Store) Gateways(ctx context.Context) ([]store.Gateway, error) {
	gs := []store.Gateway{}
	err := s.read(ctx, "list gateways", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+gatewayColumns+` FROM gateways
			ORDER BY created_at, seq`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			g, err := scanGateway(rows)
			if err != nil {
				return err
			}
			gs = append(gs, *g)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return gs, nil
}

// TouchGateway sets the gateway's LastSeen to now. It returns NotFound for
// an unknown gateway.
func (s *Store) TouchGateway(ctx context.Context, id string, now time.Time) error {
	return s.write(ctx, "touch gateway", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE gateways SET last_seen = $1 WHERE id = $2`, unix(now), id)
		return affected(res, err, "gateway not found")
	})
}

// UpdateGateway implements store.Store.
func (s *Store) UpdateGateway(ctx context.Context, id string, u store.GatewayUpdate) (*store.Gateway, error) {
	var region, endpoint, tcpPort, relays any
	if u.Relays != nil {
		enc, err := encodeRelays(*u.Relays)
		if err != nil {
			return nil, err
		}
		relays = enc
	}
	if u.TCPPort != nil {
		if *u.TCPPort < 0 || *u.TCPPort > 65535 {
			return nil, errs.E(errs.Invalid, "gateway TCP port out of range")
		}
		tcpPort = *u.TCPPort
	}
	if u.Region != nil {
		region = *u.Region
	}
	if u.Endpoint != nil {
		endpoint = *u.Endpoint
	}
	var g *store.Gateway
	err := s.write(ctx, "update gateway", func(tx *sql.Tx) error {
		var err error
		g, err = scanGateway(tx.QueryRowContext(ctx, `UPDATE gateways
			SET region = COALESCE($1, region), endpoint = COALESCE($2, endpoint),
				credential_hash = COALESCE($3, credential_hash), tcp_port = COALESCE($5, tcp_port),
				relays = COALESCE($6, relays)
			WHERE id = $4 RETURNING `+gatewayColumns, region, endpoint, nullBytes(u.CredentialHash), id, tcpPort, relays))
		if errors.Is(err, sql.ErrNoRows) {
			return errs.E(errs.NotFound, "gateway not found")
		}
		return mapErr(err, "gateway credential already in use")
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

// DeleteGateway implements store.Store.
func (s *Store) DeleteGateway(ctx context.Context, id string) (*store.Gateway, error) {
	var g *store.Gateway
	err := s.write(ctx, "delete gateway", func(tx *sql.Tx) error {
		var err error
		g, err = scanGateway(tx.QueryRowContext(ctx, `DELETE FROM gateways WHERE id = $1 RETURNING `+gatewayColumns, id))
		if err != nil {
			return notFound(err, "gateway not found")
		}
		// Its open session intervals end when it was last seen (at their
		// start if never): it will never report their end.
		var end any
		if g.LastSeen != nil {
			end = unix(g.LastSeen.UTC().Truncate(time.Minute))
		}
		_, err = tx.ExecContext(ctx, `UPDATE usage_sessions SET gateway_id = NULL,
			ended_at = CASE WHEN CAST($1 AS BIGINT) IS NULL OR CAST($1 AS BIGINT) < started_at THEN started_at ELSE CAST($1 AS BIGINT) END
			WHERE gateway_id = $2 AND ended_at IS NULL`, end, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

// encodeRelays writes rs as the relays column: "EXIT=PORT" comma-separated
// in port order. A port out of range or given twice, or an exit id that is
// empty or holds "=" or ",", is Invalid.
func encodeRelays(rs []store.Relay) (string, error) {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b store.Relay) int { return a.Port - b.Port })
	parts := make([]string, 0, len(rs))
	for i, r := range rs {
		if r.Port < 1 || r.Port > 65535 || (i > 0 && rs[i-1].Port == r.Port) {
			return "", errs.E(errs.Invalid, "gateway relay port out of range or given twice")
		}
		if r.Exit == "" || strings.ContainsAny(r.Exit, "=,") {
			return "", errs.E(errs.Invalid, "gateway relay exit id is empty or malformed")
		}
		parts = append(parts, r.Exit+"="+strconv.Itoa(r.Port))
	}
	return strings.Join(parts, ","), nil
}

// decodeRelays reads the relays column; nil for none.
func decodeRelays(s string) ([]store.Relay, error) {
	if s == "" {
		return nil, nil
	}
	var out []store.Relay
	for item := range strings.SplitSeq(s, ",") {
		exit, port, ok := strings.Cut(item, "=")
		p, err := strconv.Atoi(port)
		if !ok || err != nil {
			return nil, fmt.Errorf("sqlstore: malformed gateway relays %q", item)
		}
		out = append(out, store.Relay{Exit: exit, Port: p})
	}
	return out, nil
}
