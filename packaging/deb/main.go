// Command deb builds the Debian package of Nitronet:
//
//	go run ./packaging/deb [--version V] [--arch amd64] [--out dist]
//
// run from the repository's root. It compiles ./cmd/nitronet (static, no
// cgo) and packs it with nfpm (github.com/goreleaser/nfpm/v2, used as a
// library, so this program's dependencies stay out of the nitronet binary)
// together with the systemd units in packaging/systemd, the default
// settings /etc/nitronet/nitronet.toml and gateway.env (configuration
// files the package never overwrites), the maintainer scripts in
// packaging/scripts (postinst creates the nitronet system user) and the
// documentation. It writes OUT/nitronet_VERSION_ARCH.deb and prints its
// path.
//
// The version defaults to 0~gitYYYYMMDDhhmmss.COMMIT from the checkout's
// last commit, so that later builds sort later.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "deb:", err)
		os.Exit(1)
	}
}

// options are the command line.
type options struct {
	version    string
	arch       string
	out        string
	binary     string // a nitronet binary to pack instead of building one
	maintainer string
	root       string // the repository root
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("deb", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.version, "version", "", "package version (default 0~gitTIME.COMMIT of the last commit)")
	fs.StringVar(&o.arch, "arch", "amd64", "Debian architecture: amd64 or arm64")
	fs.StringVar(&o.out, "out", "dist", "directory to write the package to")
	fs.StringVar(&o.binary, "binary", "", "pack this nitronet binary instead of building ./cmd/nitronet")
	fs.StringVar(&o.maintainer, "maintainer", "Nitronet maintainers <packaging@nitronet.invalid>", "the package's Maintainer field")
	fs.StringVar(&o.root, "root", ".", "the repository root")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if _, err := os.Stat(filepath.Join(o.root, "packaging", "systemd")); err != nil {
		return fmt.Errorf("--root %s is not the repository root (run from it, or pass --root): %w", o.root, err)
	}
	goarch, ok := map[string]string{"amd64": "amd64", "arm64": "arm64"}[o.arch]
	if !ok {
		return fmt.Errorf("--arch %q: want amd64 or arm64", o.arch)
	}
	mtime := commitTime(ctx, o.root)
	if o.version == "" {
		o.version = gitVersion(ctx, o.root, mtime)
	}
	if !debianVersion.MatchString(o.version) {
		return fmt.Errorf("--version %q is not a Debian version (digits first; letters, digits, . + ~ -)", o.version)
	}
	work, err := os.MkdirTemp("", "nitronet-deb-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if o.binary == "" {
		o.binary = filepath.Join(work, "nitronet")
		if err := buildBinary(ctx, o.root, goarch, o.binary, stderr); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	path, err := pack(o, mtime)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, path)
	return nil
}

// debianVersion is the syntax of a Debian upstream version without epoch.
var debianVersion = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~-]*$`)

// buildBinary compiles ./cmd/nitronet for linux/goarch into out: static
// (no cgo), stripped, with paths trimmed, and with the commit recorded
// when the checkout is a git repository (`nitronet version` shows it).
func buildBinary(ctx context.Context, root, goarch, out string, stderr io.Writer) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=auto", "-ldflags=-s -w", "-o", out, "./cmd/nitronet")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/nitronet: %w", err)
	}
	return nil
}

// pack writes the package and returns its path.
func pack(o options, mtime time.Time) (string, error) {
	in := func(p string) string { return filepath.Join(o.root, filepath.FromSlash(p)) }
	file := func(src, dst string, mode os.FileMode) *files.Content {
		return &files.Content{Source: in(src), Destination: dst, FileInfo: &files.ContentFileInfo{Mode: mode}}
	}
	conf := func(src, dst string) *files.Content {
		c := file(src, dst, 0o600)
		c.Type = files.TypeConfigNoReplace
		return c
	}
	binary := &files.Content{Source: o.binary, Destination: "/usr/bin/nitronet", FileInfo: &files.ContentFileInfo{Mode: 0o755}}
	info := nfpm.WithDefaults(&nfpm.Info{
		Name:          "nitronet",
		Arch:          o.arch,
		Platform:      "linux",
		Version:       o.version,
		VersionSchema: "none",
		Section:       "net",
		Priority:      "optional",
		Maintainer:    o.maintainer,
		Description: "Self-hostable, no-log WireGuard VPN service\n" +
			"One binary: the control server (JSON API, web portal, staff console; SQLite\n" +
			"or PostgreSQL), WireGuard gateways (kernel mode with nftables, or userspace),\n" +
			"a client, and the operator tools a privacy policy obliges you to have.\n" +
			"Installs the nitronet.service and nitronet-gateway.service units (not enabled).",
		MTime: mtime,
		Overridables: nfpm.Overridables{
			Depends: []string{"adduser"},
			Contents: files.Contents{
				binary,
				file("packaging/systemd/nitronet.service", "/lib/systemd/system/nitronet.service", 0o644),
				file("packaging/systemd/nitronet-gateway.service", "/lib/systemd/system/nitronet-gateway.service", 0o644),
				conf("packaging/nitronet.toml", "/etc/nitronet/nitronet.toml"),
				conf("packaging/gateway.env", "/etc/nitronet/gateway.env"),
				file("README.md", "/usr/share/doc/nitronet/README.md", 0o644),
				file("docs/backup.md", "/usr/share/doc/nitronet/backup.md", 0o644),
				file("docs/api-errors.md", "/usr/share/doc/nitronet/api-errors.md", 0o644),
				file("internal/api/openapi.json", "/usr/share/doc/nitronet/openapi.json", 0o644),
				file("packaging/blocklists/test-ads.txt", "/usr/share/doc/nitronet/blocklists/test-ads.txt", 0o644),
			},
			Scripts: nfpm.Scripts{
				PostInstall: in("packaging/scripts/postinst"),
				PreRemove:   in("packaging/scripts/prerm"),
				PostRemove:  in("packaging/scripts/postrm"),
			},
		},
	})
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return "", fmt.Errorf("package contents: %w", err)
	}
	path := filepath.Join(o.out, deb.Default.ConventionalFileName(info))
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp)
	if err := deb.Default.Package(info, f); err != nil {
		f.Close()
		return "", fmt.Errorf("pack %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return path, os.Rename(tmp, path)
}

// commitTime is the time of the checkout's last commit, so that a build
// of the same commit has the same file times; now without git.
func commitTime(ctx context.Context, root string) time.Time {
	out, err := git(ctx, root, "log", "-1", "--format=%ct")
	if err != nil {
		return time.Now().UTC().Truncate(time.Second)
	}
	sec, err := strconv.ParseInt(out, 10, 64)
	if err != nil {
		return time.Now().UTC().Truncate(time.Second)
	}
	return time.Unix(sec, 0).UTC()
}

// gitVersion returns 0~gitYYYYMMDDhhmmss.COMMIT for the last commit (or
// 0~dev outside a git checkout): "~" sorts before any release 0.x.
func gitVersion(ctx context.Context, root string, t time.Time) string {
	sha, err := git(ctx, root, "rev-parse", "--short=12", "HEAD")
	if err != nil {
		return "0~dev"
	}
	return "0~git" + t.Format("20060102150405") + "." + sha
}

func git(ctx context.Context, root string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("git %s: %s", strings.Join(args, " "), strings.TrimSpace(string(ee.Stderr)))
		}
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}
