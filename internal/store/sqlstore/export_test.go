package sqlstore

import "io/fs"

// Migrations returns the embedded migrations of dialect ("sqlite" or
// "postgres"), for tests that apply them one at a time.
func Migrations(dialect string) (fs.FS, error) {
	return fs.Sub(migrations, "migrations/"+dialect)
}
