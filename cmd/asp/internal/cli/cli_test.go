package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestExitStatus(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	for _, tc := range []struct {
		args []string
		code int
		// stderr must contain this
		msg string
	}{
		{nil, ExitUsage, "missing command"},
		{[]string{"frobnicate"}, ExitUsage, `unknown command "frobnicate"`},
		{[]string{"init"}, ExitUsage, "--home is required"},
		{[]string{"init", "--home"}, ExitUsage, "flag needs an argument"},
		{[]string{"init", "--home", home, "--bogus"}, ExitUsage, "unknown flag"},
		{[]string{"init", "--home", home, "--profile", "prod"}, ExitUsage, "--profile"},
		{[]string{"init", "--home", home, "extra"}, ExitUsage, "unknown command"},
		{[]string{"agent"}, ExitUsage, "missing subcommand"},
		{[]string{"agent", "add", "--home", home}, ExitUsage, "accepts 1 arg"},
		{[]string{"audit", "verify"}, ExitUsage, "give --home DIR or a bundle FILE"},
		{[]string{"testnet", "--dir", home, "--nodes", "1", "--demo"}, ExitUsage, "--demo needs"},
		{[]string{"--log-level", "loud", "agent", "list", "--home", home}, ExitUsage, "log level"},
		{[]string{"--help"}, ExitOK, ""},
		{[]string{"agent", "list", "--home", home}, ExitFailure, "asp node --home"},
		{[]string{"node", "--home", home}, ExitFailure, "asp init --home"},
		{[]string{"audit", "verify", filepath.Join(home, "nope.bundle")}, ExitFailure, "bundle"},
	} {
		code, _, stderr := run(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.msg) {
			t.Errorf("asp %q: exit %d, stderr %q; want exit %d and %q", tc.args, code, stderr, tc.code, tc.msg)
		}
		if code == ExitFailure && strings.Count(strings.TrimRight(stderr, "\n"), "\n") != 0 {
			t.Errorf("asp %q: failure message is not one line: %q", tc.args, stderr)
		}
	}
}

func TestInit(t *testing.T) {
	home := filepath.Join(t.TempDir(), "acme")
	code, stdout, stderr := run(t, "init", "--home", home, "--profile", "test", "--json")
	if code != ExitOK {
		t.Fatalf("init: exit %d: %s", code, stderr)
	}
	var res InitResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("init --json: %v: %q", err, stdout)
	}
	if res.Org != "acme" || !strings.HasPrefix(res.PeerID, "12D3KooW") || res.Home != home {
		t.Errorf("init --json = %+v", res)
	}
	for _, f := range []string{"identity.key", "admin.token"} {
		fi, err := os.Stat(filepath.Join(home, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	cfg, err := os.ReadFile(filepath.Join(home, "config.yaml"))
	if err != nil || !strings.Contains(string(cfg), "127.0.0.1") {
		t.Errorf("test profile config: %v\n%s", err, cfg)
	}

	// A second init refuses to touch the home.
	key, _ := os.ReadFile(filepath.Join(home, "identity.key"))
	code, _, stderr = run(t, "init", "--home", home)
	if code != ExitFailure || !strings.Contains(stderr, "already") {
		t.Errorf("second init: exit %d, stderr %q", code, stderr)
	}
	if again, _ := os.ReadFile(filepath.Join(home, "identity.key")); !bytes.Equal(key, again) {
		t.Error("second init changed the identity key")
	}

	// A home whose node never ran has an empty ledger, which verifies.
	code, stdout, stderr = run(t, "audit", "verify", "--home", home)
	if code != ExitOK || !strings.Contains(stdout, "empty") {
		t.Errorf("audit verify of a fresh home: exit %d, %q %q", code, stdout, stderr)
	}
}
