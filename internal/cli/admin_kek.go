package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/rekey"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/spf13/cobra"
)

// kekRotationJSON is one rotation in `admin kek rotate|status --json`.
type kekRotationJSON struct {
	ID           string    `json:"id"`
	Phase        string    `json:"phase"`
	StartedAt    jsonTime  `json:"started_at"`
	StartedBy    string    `json:"started_by"`
	TargetKEK    uint32    `json:"target_kek"`
	Passes       int       `json:"passes"`
	Rewrapped    int64     `json:"rewrapped_accounts"`
	Resealed     int64     `json:"resealed_secrets"`
	DestroyAfter jsonTime  `json:"destroy_after"`
	Problem      *string   `json:"problem"`
	FinishedAt   *jsonTime `json:"finished_at"`
	Destroyed    []uint32  `json:"destroyed_keks"`
}

func rotationJSON(r *rekey.Rotation) *kekRotationJSON {
	if r == nil {
		return nil
	}
	v := &kekRotationJSON{ID: r.ID, Phase: r.Phase, StartedAt: jsonTime(r.StartedAt), StartedBy: r.StartedBy,
		TargetKEK: r.Target, Passes: r.Passes, Rewrapped: r.Rewrapped, Resealed: r.Resealed,
		DestroyAfter: jsonTime(r.DestroyAfter), FinishedAt: optTime(r.FinishedAt), Destroyed: r.Destroyed}
	if r.Problem != "" {
		v.Problem = &r.Problem
	}
	if v.Destroyed == nil {
		v.Destroyed = []uint32{}
	}
	return v
}

// kekStatusJSON is `admin kek status --json`.
type kekStatusJSON struct {
	KEKs         []kekJSON         `json:"keks"`
	Current      *kekRotationJSON  `json:"current"`
	Recent       []kekRotationJSON `json:"recent"`
	EverySeconds int64             `json:"rotation_every_seconds"`
	NextDue      *jsonTime         `json:"next_due"`
}

type kekJSON struct {
	ID        uint32   `json:"id"`
	Primary   bool     `json:"primary"`
	CreatedAt jsonTime `json:"created_at"`
}

func newAdminKEKCmd(a *admin) *cobra.Command {
	c := &cobra.Command{Use: "kek", Short: "The key-encryption keyring: rotate the KEK and destroy the old one (admin; audited)"}
	var asJSON, noWait bool
	rotate := &cobra.Command{
		Use:   "rotate [--no-wait] [--json]",
		Short: "Rotate the key-encryption key now (or resume a rotation), then destroy the old one",
		Long: "Adds a new key-encryption key to the keyring, re-wraps every account's data key and re-seals\n" +
			"the staff two-factor seeds under it, in batches, while the server keeps running; a rotation\n" +
			"stopped midway resumes where it stopped. Then it waits --kek-settle for requests in flight on\n" +
			"every process sharing the keyring, checks that nothing is left under the old key, and\n" +
			"destroys it (overwritten and removed). A backup of the database taken before that can no\n" +
			"longer be decrypted. With --no-wait it stops after re-wrapping and leaves the destruction to\n" +
			"the server's hourly job (or a later run of this command).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.asStaff(cmd, func(srv *server.Server, p staff.Principal) error {
				r, err := rotateKEK(cmd.Context(), a.env.Stderr, a.env.Clock, srv, p, !noWait)
				if err != nil {
					return err
				}
				if asJSON {
					if err := printJSON(a.env.Stdout, rotationJSON(r)); err != nil {
						return err
					}
				} else {
					printRotation(a.env.Stdout, r)
				}
				if r.Phase == rekey.PhaseBlocked {
					return errs.E(errs.Precondition, "the rotation cannot finish: %s", r.Problem)
				}
				return nil
			})
		},
	}
	rotate.Flags().BoolVar(&noWait, "no-wait", false, "do not wait to destroy the old key-encryption key")
	jsonFlag(rotate, &asJSON)

	var statusJSON bool
	status := &cobra.Command{
		Use: "status [--json]", Short: "The keyring's keys (ids and dates, never the keys) and the rotations", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.asStaff(cmd, func(srv *server.Server, p staff.Principal) error {
				st, err := srv.Rekey.Status(cmd.Context(), p)
				if err != nil {
					return err
				}
				if statusJSON {
					v := kekStatusJSON{KEKs: []kekJSON{}, Current: rotationJSON(st.Current), Recent: []kekRotationJSON{},
						EverySeconds: int64(st.Every / time.Second), NextDue: optTime(st.NextDue)}
					for _, k := range st.KEKs {
						v.KEKs = append(v.KEKs, kekJSON{ID: k.ID, Primary: k.Primary, CreatedAt: jsonTime(k.Created)})
					}
					for i := range st.Recent {
						v.Recent = append(v.Recent, *rotationJSON(&st.Recent[i]))
					}
					return printJSON(a.env.Stdout, v)
				}
				return printKEKStatus(a.env.Stdout, st)
			})
		},
	}
	jsonFlag(status, &statusJSON)
	c.AddCommand(rotate, status)
	return c
}

// rotateKEK rotates, and with wait waits (telling the operator on w) until
// the old KEK may be destroyed and finishes.
func rotateKEK(ctx context.Context, w io.Writer, clock func() time.Time, srv *server.Server, p staff.Principal, wait bool) (*rekey.Rotation, error) {
	r, err := srv.Rekey.Rotate(ctx, p)
	if err != nil || !wait {
		return r, err
	}
	for r.Phase == rekey.PhaseSettling {
		d := r.DestroyAfter.Sub(clock())
		fmt.Fprintf(w, "Re-wrapped %d account keys under KEK %d; waiting %s for requests in flight before destroying the old key (Ctrl-C leaves that to the server's hourly job).\n",
			r.Rewrapped, r.Target, d.Round(time.Second))
		t := time.NewTimer(max(d, 0) + 100*time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		if r, err = srv.Rekey.Rotate(ctx, p); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func printRotation(w io.Writer, r *rekey.Rotation) {
	fmt.Fprintf(w, "Rotation %s to KEK %d: %s.\n", r.ID, r.Target, r.Phase)
	fmt.Fprintf(w, "Re-wrapped %d account keys and re-sealed %d staff secrets and queued jobs.\n", r.Rewrapped, r.Resealed)
	switch {
	case r.Phase == rekey.PhaseFinished:
		if len(r.Destroyed) > 0 {
			fmt.Fprintf(w, "Destroyed KEK %s: backups of the database taken before this rotation can no longer be decrypted.\n", idList(r.Destroyed))
		}
	case r.Phase == rekey.PhaseSettling:
		fmt.Fprintf(w, "The old key will be destroyed after %s.\n", r.DestroyAfter.UTC().Format(time.RFC3339))
	}
	if r.Problem != "" {
		fmt.Fprintf(w, "Problem: %s\n", r.Problem)
	}
}

func printKEKStatus(w io.Writer, st *rekey.Status) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEK\tPRIMARY\tCREATED")
	for _, k := range st.KEKs {
		fmt.Fprintf(tw, "%d\t%v\t%s\n", k.ID, k.Primary, k.Created.UTC().Format(time.RFC3339))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if st.Every > 0 && st.NextDue != nil {
		fmt.Fprintf(w, "Rotation every %s; next due %s.\n", st.Every, st.NextDue.UTC().Format(time.RFC3339))
	} else {
		fmt.Fprintln(w, "No scheduled rotation (--kek-rotation 0).")
	}
	if st.Current != nil {
		printRotation(w, st.Current)
	}
	for i := range st.Recent {
		r := &st.Recent[i]
		fmt.Fprintf(w, "Rotation %s to KEK %d finished %s (destroyed KEK %s).\n", r.ID, r.Target,
			r.FinishedAt.UTC().Format(time.RFC3339), idList(r.Destroyed))
	}
	return nil
}

func idList(ids []uint32) string {
	if len(ids) == 0 {
		return "none"
	}
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprint(id)
	}
	return strings.Join(s, ", ")
}
