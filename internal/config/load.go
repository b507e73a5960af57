package config

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/spf13/pflag"
)

// secretSettings are the settings that hold credentials. A configuration
// file that sets one must not be readable by group or others.
var secretSettings = []string{"smtp-password", "sms-webhook-token", "metrics-token"}

// Load completes the settings bound on fs (by Settings.Bind or
// Gateway.Bind) after the command line has been parsed. For every setting
// not given as a flag it takes, in order, the environment variable
// NITRONET_<FLAG> and then the configuration file; anything else keeps its
// default. Flags that are not settings (a command's own arguments) are
// never touched.
//
// The configuration file is named by the flag --config or else by
// NITRONET_CONFIG; without either there is none. It is TOML whose keys are
// flag names, at the top level or grouped in tables whose names are the
// flag's first word:
//
//	data = "/var/lib/nitronet"
//	retention = ["usage.sessions=30"]
//	[smtp]
//	host = "mail.example.com"   # the same as smtp-host = "…"
//
// An unknown key, a value of the wrong type, or a file holding a secret
// (smtp-password, sms-webhook-token, metrics-token) that others may read is an error that
// names the file and the key.
func Load(fs *pflag.FlagSet, getenv func(string) string) error {
	file, path, err := readConfigFile(fs, getenv)
	if err != nil {
		return err
	}
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || !isSetting(f) || f.Name == "config" || f.Changed {
			return
		}
		if v := getenv(EnvName(f.Name)); v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s: %w", EnvName(f.Name), e)
			}
			return
		}
		for _, v := range file[f.Name] {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s: %s: %w", path, f.Name, e)
				return
			}
		}
	})
	return err
}

func isSetting(f *pflag.Flag) bool { return len(f.Annotations[annotation]) > 0 }

// readConfigFile reads the file named by --config or NITRONET_CONFIG and
// returns its values by flag name, and its path.
func readConfigFile(fs *pflag.FlagSet, getenv func(string) string) (map[string][]string, string, error) {
	cf := fs.Lookup("config")
	if cf == nil || !isSetting(cf) {
		return nil, "", nil
	}
	path := cf.Value.String()
	if !cf.Changed {
		path = getenv(EnvName("config"))
		if path != "" {
			if err := fs.Set("config", path); err != nil {
				return nil, "", err
			}
		}
	}
	if path == "" {
		return nil, "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, path, fmt.Errorf("--config: %w", err)
	}
	values, err := ParseFile(path, b)
	if err != nil {
		return nil, path, err
	}
	var unknown []string
	for k := range values {
		if f := fs.Lookup(k); f == nil || !isSetting(f) || k == "config" {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, path, fmt.Errorf("%s: unknown setting %s (keys are the flag names of `nitronet serve --help`)", path, strings.Join(unknown, ", "))
	}
	for _, k := range secretSettings {
		if _, ok := values[k]; !ok {
			continue
		}
		if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
			return nil, path, fmt.Errorf("%s holds %s but others may read it (mode %#o): chmod 600 %s", path, k, st.Mode().Perm(), path)
		}
	}
	return values, path, nil
}

// ParseFile parses a TOML configuration file (see Load) into values by
// flag name. Arrays give several values; every value is given as the text
// a flag would take. name is used in errors.
func ParseFile(name string, b []byte) (map[string][]string, error) {
	var raw map[string]any
	if _, err := toml.Decode(string(b), &raw); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	out := map[string][]string{}
	var walk func(prefix string, m map[string]any) error
	walk = func(prefix string, m map[string]any) error {
		for k, v := range m {
			key := prefix + k
			if sub, ok := v.(map[string]any); ok {
				if prefix != "" {
					return fmt.Errorf("%s: [%s]: tables nest one level only", name, key)
				}
				if err := walk(key+"-", sub); err != nil {
					return err
				}
				continue
			}
			vals, err := flagValues(v)
			if err != nil {
				return fmt.Errorf("%s: %s: %w", name, key, err)
			}
			if _, dup := out[key]; dup {
				return fmt.Errorf("%s: %s is set twice", name, key)
			}
			out[key] = vals
		}
		return nil
	}
	if err := walk("", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// flagValues returns v as the text values a flag takes.
func flagValues(v any) ([]string, error) {
	switch x := v.(type) {
	case string:
		return []string{x}, nil
	case int64:
		return []string{strconv.FormatInt(x, 10)}, nil
	case bool:
		return []string{strconv.FormatBool(x)}, nil
	case float64:
		return []string{strconv.FormatFloat(x, 'g', -1, 64)}, nil
	case []any:
		var out []string
		for _, e := range x {
			switch e.(type) {
			case []any, map[string]any:
				return nil, fmt.Errorf("arrays hold plain values only")
			}
			s, err := flagValues(e)
			if err != nil {
				return nil, err
			}
			out = append(out, s...)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("unsupported value %T (use a string, number, boolean or array)", v)
	}
}
