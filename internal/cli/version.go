package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"
)

// versionInfo is what `nitronet version` reports, read from the build
// information the Go toolchain embeds in the binary. `go build` and
// `go install` inside a git checkout record the commit, its time and
// whether the tree had uncommitted changes; other builds may have none.
type versionInfo struct {
	// Version is the module version ("v1.2.0", or a pseudo-version from
	// the commit), or "devel" when the toolchain recorded none.
	Version string `json:"version"`
	// Revision is the commit the binary was built from, "" if unknown.
	Revision string `json:"revision"`
	// Time is the commit's time, null if unknown.
	Time *jsonTime `json:"time"`
	// Modified reports uncommitted changes in the tree at build time.
	Modified  bool   `json:"modified"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"` // GOOS/GOARCH
}

// readVersion extracts versionInfo from bi, which may be nil.
func readVersion(bi *debug.BuildInfo) versionInfo {
	v := versionInfo{Version: "devel", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi == nil {
		return v
	}
	if m := bi.Main.Version; m != "" && m != "(devel)" {
		v.Version = m
	}
	if bi.GoVersion != "" {
		v.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
				v.Time = optTime(&t)
			}
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// printVersion prints the version to env's stdout, as text or JSON.
func printVersion(env *Env, asJSON bool) error {
	v := readVersion(env.BuildInfo)
	if asJSON {
		return printJSON(env.Stdout, v)
	}
	w := env.Stdout
	fmt.Fprintf(w, "nitronet %s\n", v.Version)
	switch {
	case v.Revision == "":
		fmt.Fprintln(w, "  commit:     unknown (built without version control information)")
	case v.Modified:
		fmt.Fprintf(w, "  commit:     %s (with uncommitted changes)\n", v.Revision)
	default:
		fmt.Fprintf(w, "  commit:     %s\n", v.Revision)
	}
	if v.Time != nil {
		fmt.Fprintf(w, "  committed:  %s\n", time.Time(*v.Time).UTC().Format(time.RFC3339))
	}
	_, err := fmt.Fprintf(w, "  go:         %s %s\n", v.GoVersion, v.Platform)
	return err
}

func newVersionCmd(env *Env) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "version",
		Short: "Print the version, the commit it was built from, and the Go version",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return printVersion(env, asJSON) },
	}
	jsonFlag(c, &asJSON)
	return c
}
