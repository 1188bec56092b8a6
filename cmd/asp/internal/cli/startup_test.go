package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aspnode/asp/node"
	"github.com/aspnode/asp/node/client"
)

// Start-up failures a person meets, each with its one-line message
// (docs/operating.md lists them).
func TestStartupMessages(t *testing.T) {
	dir := t.TempDir()
	newHome := func(name string) string {
		home := filepath.Join(dir, name)
		if code, _, stderr := run(t, "init", "--home", home, "--profile", "test"); code != ExitOK {
			t.Fatalf("init: %s", stderr)
		}
		return home
	}
	missing := filepath.Join(dir, "nonexistent")
	emptyToken := newHome("empty-token")
	writeTestFile(t, filepath.Join(emptyToken, node.AdminTokenFile), "")
	badConfig := newHome("bad-config")
	writeTestFile(t, filepath.Join(badConfig, node.ConfigFile), "org: x\nlisten: [/ip4/127.0.0.1/tcp/0]\ninviteTimeout: 30\n")
	badConsent := newHome("bad-consent")
	writeTestFile(t, filepath.Join(badConsent, node.ConfigFile), "org: x\nlisten: [/ip4/127.0.0.1/tcp/0]\nconsent: maybe\n")
	unknownField := newHome("unknown-field")
	writeTestFile(t, filepath.Join(unknownField, node.ConfigFile), "org: x\nlisten: [/ip4/127.0.0.1/tcp/0]\nlisten_addrs: []\n")
	good := newHome("good")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"audit", "verify", "--home", missing}, "no node home at " + missing + " (make one with asp init"},
		{[]string{"node", "--home", missing}, "asp init --home " + missing},
		{[]string{"node", "--home", emptyToken}, "admin.token is empty"},
		{[]string{"node", "--home", badConfig}, "line 3, field inviteTimeout"},
		{[]string{"node", "--home", badConsent}, `consent "maybe": want accept-all, allow-list or ask`},
		{[]string{"node", "--home", unknownField}, "line 3, field listen_addrs"},
		{[]string{"node", "--home", good, "--bootstrap", "/ip4/127.0.0.1/tcp/4001"}, "missing /p2p/<peer id>"},
		{[]string{"node", "--home", good, "--listen", "127.0.0.1:4001"}, `listen "127.0.0.1:4001": not a multiaddr`},
	} {
		code, _, stderr := run(t, tc.args...)
		if code != ExitFailure || !strings.Contains(stderr, tc.want) {
			t.Errorf("asp %q: exit %d, %q; want exit 1 and %q", tc.args, code, stderr, tc.want)
		}
		if strings.Count(strings.TrimRight(stderr, "\n"), "\n") != 0 || strings.Contains(stderr, "open ") {
			t.Errorf("asp %q: not one plain line: %q", tc.args, stderr)
		}
	}
}

func writeTestFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A second node on a running home is refused with the first one's pid; a
// node killed with SIGKILL leaves its lock and api file, and the next
// start takes both over; a libp2p port another node holds is refused.
func TestStartupProcesses(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "org")
	if code, _, stderr := run(t, "init", "--home", home, "--profile", "test"); code != ExitOK {
		t.Fatalf("init: %s", stderr)
	}
	first := startNodeProc(t, home, "--listen", "/ip4/127.0.0.1/tcp/0")
	code, _, stderr := run(t, "node", "--home", home)
	want := fmt.Sprintf("another asp node (pid %d) is running on this home", first.cmd.Process.Pid)
	if code != ExitFailure || !strings.Contains(stderr, want) {
		t.Fatalf("second node on the home: exit %d, %q; want %q", code, stderr, want)
	}

	first.kill(t)
	stale := apiURLOf(t, home)
	code, _, stderr = run(t, "status", "--home", home)
	if code != ExitFailure || !strings.Contains(stderr, "node not running: the api file names a node that is gone") {
		t.Fatalf("status of a killed node: exit %d, %q", code, stderr)
	}
	code, _, stderr = run(t, "agent", "list", "--home", home)
	if code != ExitFailure || !strings.Contains(stderr, "was left by a node that is gone") {
		t.Fatalf("agent list on a killed node: exit %d, %q", code, stderr)
	}
	if locked, _ := node.HomeLocked(home); locked {
		t.Fatal("the lock outlived the killed node")
	}
	second := startNodeProc(t, home, "--listen", "/ip4/127.0.0.1/tcp/0")
	if now := apiURLOf(t, home); now == stale {
		t.Fatalf("api file still names the killed node's %s", stale)
	}
	// Another home given the port the running node listens on.
	other := filepath.Join(dir, "other")
	if code, _, stderr := run(t, "init", "--home", other, "--profile", "test"); code != ExitOK {
		t.Fatalf("init: %s", stderr)
	}
	port := nodeTCPPort(t, home)
	code, _, stderr = run(t, "node", "--home", other, "--listen", "/ip4/127.0.0.1/tcp/"+port)
	if code != ExitFailure || !strings.Contains(stderr, "in use by another process") {
		t.Fatalf("node on a taken port: exit %d, %q", code, stderr)
	}
	second.stop(t)
	if _, err := os.Stat(filepath.Join(home, node.APIFile)); err == nil {
		t.Fatal("api file left after a clean stop")
	}
}

// nodeTCPPort is the TCP port of the running node's first loopback
// address.
func nodeTCPPort(t *testing.T, home string) string {
	t.Helper()
	c, err := client.FromHome(home)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Node(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range info.Addrs {
		if rest, ok := strings.CutPrefix(a, "/ip4/127.0.0.1/tcp/"); ok {
			port, _, _ := strings.Cut(rest, "/")
			return port
		}
	}
	t.Fatalf("no loopback TCP address in %v", info.Addrs)
	return ""
}
