package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aspnode/asp/node"
	"github.com/aspnode/asp/testnet"
)

// asp doctor passes a healthy home, running or stopped, and names what is
// wrong with a damaged one.
func TestDoctor(t *testing.T) {
	net := testnet.New(t, 1)
	home := net.Nodes[0].Home
	net.CreateAgent(0, "vendor", "compute")
	checks := func(wantCode int) map[string]DoctorCheck {
		t.Helper()
		code, stdout, stderr := run(t, "doctor", "--home", home, "--json")
		var list []DoctorCheck
		if err := json.Unmarshal([]byte(stdout), &list); err != nil || code != wantCode {
			t.Fatalf("doctor: exit %d, want %d: %s %s (%v)", code, wantCode, stdout, stderr, err)
		}
		m := map[string]DoctorCheck{}
		for _, c := range list {
			m[c.Name] = c
		}
		return m
	}
	m := checks(ExitOK)
	if m["node"].Status != "ok" || !strings.Contains(m["node"].Detail, "running") || m["ports"].Status != "ok" || m["ledger"].Status != "ok" {
		t.Fatalf("doctor of a running node: %+v", m)
	}
	net.Nodes[0].Stop()
	m = checks(ExitOK)
	if m["node"].Detail != "not running" || m["ledger"].Status != "ok" || m["permissions"].Status != "ok" {
		t.Fatalf("doctor of a stopped node: %+v", m)
	}

	if err := os.Chmod(filepath.Join(home, node.IdentityFile), 0o644); err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(home, node.AdminTokenFile), "changeme\n")
	writeTestFile(t, filepath.Join(home, node.ConfigFile), "consent: maybe\n")
	m = checks(ExitFailure)
	for name, want := range map[string]string{
		"permissions": "identity.key (644)",
		"admin token": "want at least 32",
		"config":      `consent "maybe"`,
	} {
		if c := m[name]; c.Status != "fail" || !strings.Contains(c.Detail, want) {
			t.Errorf("doctor %s: %+v, want fail with %q", name, c, want)
		}
	}
}
