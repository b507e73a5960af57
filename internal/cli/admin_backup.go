package cli

import (
	"fmt"

	"github.com/nitronet/nitronet/internal/backup"
	"github.com/nitronet/nitronet/internal/config"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/spf13/cobra"
)

// settings loads and checks the settings as `serve` does, without building
// a server: backup and restore must not open, create or migrate the
// database they work on.
func (a *admin) settings(cmd *cobra.Command) (config.Settings, error) {
	if err := config.Load(cmd.Flags(), a.env.Getenv); err != nil {
		return config.Settings{}, err
	}
	cfg := a.cfg
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	if cfg.Database != "" {
		return cfg, errs.Field(errs.Invalid, "database",
			"this server uses PostgreSQL: back it up with pg_dump and restore it with pg_restore (docs/backup.md)")
	}
	return cfg, nil
}

func newAdminBackupCmd(a *admin) *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "backup --output FILE",
		Short: "Write a consistent copy of the SQLite database, also while the server runs",
		Long: "Write a consistent copy of the data directory's SQLite database to FILE (mode 0600),\n" +
			"as of one moment, while `nitronet serve` goes on running, and check it.\n\n" +
			"The backup holds the database only. It does not hold the keyring of key-encryption\n" +
			"keys (DATA/keyring or --keyring): without the key-encryption key it needs, the emails\n" +
			"and mobile numbers in it cannot be read, and with it they can. Keep a copy of the\n" +
			"keyring apart from the backups, replaced after each rotation: a backup taken before\n" +
			"an erasure becomes unreadable once the key it needs is destroyed, at most one\n" +
			"--kek-rotation after the erasure. PostgreSQL is backed up with pg_dump instead\n" +
			"(docs/backup.md).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "output"); err != nil {
				return err
			}
			cfg, err := a.settings(cmd)
			if err != nil {
				return err
			}
			info, err := backup.Create(cmd.Context(), cfg.DataDir, out)
			if err != nil {
				return err
			}
			env := a.env
			fmt.Fprintf(env.Stdout, "Backed up %s to %s (schema %d, %d accounts); its integrity check passed.\n",
				cfg.DataDir, out, info.SchemaVersion, info.Accounts)
			fmt.Fprintf(env.Stderr, "The backup does not hold the keyring %s: keep a copy of it apart from the backup, replaced after each rotation.\n", cfg.Keyring)
			return nil
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "the backup file to write (must not exist)")
	return c
}

func newAdminRestoreCmd(a *admin) *cobra.Command {
	var in string
	var force bool
	c := &cobra.Command{
		Use:   "restore --input FILE [--force]",
		Short: "Restore a backup into the data directory (the server must be stopped)",
		Long: "Check a backup made by `nitronet admin backup` (its integrity, its schema, and that\n" +
			"the keyring in DATA/keyring or --keyring opens it) and make it the data\n" +
			"directory's database. An existing database is replaced only with --force, and is\n" +
			"kept beside it as nitronet.db.replaced-TIME; a database a running server has open is\n" +
			"never replaced. Start the server afterwards: it applies any newer migrations.\n\n" +
			"The keyring is not in the backup: copy the one the backed-up server used to\n" +
			"DATA/keyring (mode 0700, its files 0600) first. A backup whose key-encryption key a\n" +
			"rotation has destroyed cannot be restored.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "input"); err != nil {
				return err
			}
			cfg, err := a.settings(cmd)
			if err != nil {
				return err
			}
			r, err := backup.Restore(cmd.Context(), backup.RestoreConfig{
				Input: in, DataDir: cfg.DataDir, Keyring: cfg.Keyring, KEKFile: cfg.KEKFile, Force: force, Clock: a.env.Clock,
			})
			if err != nil {
				return err
			}
			w := a.env.Stdout
			fmt.Fprintf(w, "Restored %s (schema %d, %d accounts) as %s.\n", in, r.Backup.SchemaVersion, r.Backup.Accounts, r.Database)
			if r.Replaced != "" {
				fmt.Fprintf(w, "The database it replaced is kept as %s.\n", r.Replaced)
			}
			fmt.Fprintln(w, "Accounts erased after the backup was made are in it again: see docs/backup.md.")
			return nil
		},
	}
	c.Flags().StringVarP(&in, "input", "i", "", "the backup file to restore")
	c.Flags().BoolVar(&force, "force", false, "replace an existing database (kept as nitronet.db.replaced-TIME)")
	return c
}
