package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aspnode/asp/node/api"
)

// Each start-up failure is refused with its message, and leaves the home
// startable once fixed.
func TestStartupRefusals(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port
	for _, tc := range []struct {
		name string
		edit func(t *testing.T, home string, c *Config)
		want string
		is   error
	}{
		{"empty admin token", func(t *testing.T, home string, c *Config) {
			writeFile(t, filepath.Join(home, AdminTokenFile), "\n")
		}, "is empty", ErrWeakAdminToken},
		{"short admin token", func(t *testing.T, home string, c *Config) {
			writeFile(t, filepath.Join(home, AdminTokenFile), "secret\n")
		}, "asp init", ErrWeakAdminToken},
		{"repeated admin token", func(t *testing.T, home string, c *Config) {
			writeFile(t, filepath.Join(home, AdminTokenFile), strings.Repeat("0", 64))
		}, "repeats one character", ErrWeakAdminToken},
		{"tcp port taken", func(t *testing.T, home string, c *Config) {
			c.Listen = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", takenPort)}
		}, fmt.Sprintf("127.0.0.1:%d is in use by another process", takenPort), ErrPortTaken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := filepath.Join(t.TempDir(), "org")
			cfg, err := Init(home, "org", "test")
			if err != nil {
				t.Fatal(err)
			}
			cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
			tc.edit(t, home, &cfg)
			n, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = n.Start(context.Background())
			n.Close()
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, tc.is) {
				t.Fatalf("start: %v; want %q (%v)", err, tc.want, tc.is)
			}
			if _, err := os.Stat(filepath.Join(home, APIFile)); err == nil {
				t.Fatal("a refused start left an api file")
			}
			if locked, _ := HomeLocked(home); locked {
				t.Fatal("a refused start left the home locked")
			}
		})
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Config errors name the field, on one line.
func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		yaml, want string
	}{
		{"org: x\ninviteTimeout: soon\n", "field inviteTimeout: time: invalid duration"},
		{"org: x\nlisten: [/ip4/127.0.0.1/tcp/0]\nbogus: 1\n", "line 3, field bogus"},
		{"consent: maybe\n", `consent "maybe"`},
		{"bootstrap: [/ip4/127.0.0.1/tcp/4001]\n", "missing /p2p/<peer id>"},
		{"bootstrap: [/ip4/nowhere/tcp/4001]\n", `bootstrap "/ip4/nowhere/tcp/4001": not a multiaddr`},
		{"listen: [tcp:4001]\n", `listen "tcp:4001": not a multiaddr`},
	} {
		home := t.TempDir()
		writeFile(t, filepath.Join(home, ConfigFile), tc.yaml)
		_, err := LoadConfig(home)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("config %q: %v; want one line with %q", tc.yaml, err, tc.want)
		}
	}
}

// A home a node runs on is refused to a second node with the first one's
// pid; the api file of a node that did not remove it is gone once a node
// starts.
func TestHomeLocked(t *testing.T) {
	home := filepath.Join(t.TempDir(), "org")
	if _, err := Init(home, "org", "test"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(home, APIFile), "http://127.0.0.1:1\n") // left by a killed node
	a := startNode(t, home)
	defer a.Close()
	if b, _ := os.ReadFile(filepath.Join(home, APIFile)); strings.TrimSpace(string(b)) != a.APIURL() {
		t.Fatalf("api file %q, want %s", b, a.APIURL())
	}
	cfg, err := LoadConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Start(context.Background())
	b.Close()
	var le *HomeLockedError
	want := fmt.Sprintf("another asp node (pid %d) is running on this home", os.Getpid())
	if !errors.As(err, &le) || !strings.Contains(err.Error(), want) {
		t.Fatalf("second start: %v; want %q", err, want)
	}
	if _, err := os.Stat(filepath.Join(home, APIFile)); err != nil {
		t.Fatalf("the refused node removed the running node's api file: %v", err)
	}
	if locked, pid := HomeLocked(home); !locked || pid != os.Getpid() {
		t.Fatalf("HomeLocked: %v %d", locked, pid)
	}
	a.Close()
	if locked, _ := HomeLocked(home); locked {
		t.Fatal("home still locked after Close")
	}
	c := startNode(t, home)
	c.Close()
}

// An agent the node never heard of has no trust score (not found); an
// answer from a node with nothing to anchor trust on says so.
func TestTrustUnknownAndUnanchored(t *testing.T) {
	n := startNode(t, filepath.Join(t.TempDir(), "org"))
	defer n.Close()
	ctx := context.Background()
	stranger := "agent://12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo/nobody"
	_, err := n.Trust(ctx, stranger)
	var ne *Error
	if !errors.As(err, &ne) || ne.Code != codeNotFound {
		t.Fatalf("trust of an unknown agent: %v, want not_found", err)
	}
	r, err := n.CreateAgent(ctx, api.CreateAgentRequest{Name: "vendor", Capabilities: []string{"compute"}})
	if err != nil {
		t.Fatal(err)
	}
	info, err := n.Trust(ctx, r.AgentID)
	if err != nil {
		t.Fatal(err)
	}
	if info.Anchored || !strings.Contains(info.Hint, "preTrusted") {
		t.Fatalf("trust from an unanchored node: %+v, want anchored false and a hint", info)
	}
}

// A second node given the TCP port another node listens on is refused:
// libp2p binds with SO_REUSEPORT and would share the port silently.
func TestPortSharedWithAnotherNode(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	listen := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port)
	dir := t.TempDir()
	a := startNodeWith(t, filepath.Join(dir, "a"), func(c *Config) { c.Listen = []string{listen} })
	defer a.Close()
	home := filepath.Join(dir, "b")
	cfg, err := Init(home, "b", "test")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen = []string{listen}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Start(context.Background())
	defer b.Close()
	if !errors.Is(err, ErrPortTaken) {
		t.Fatalf("second node on %s: %v; want %v", listen, err, ErrPortTaken)
	}
}

// A node listening on every interface because its config names no listen
// address says so; one whose config names the addresses does not.
func TestWarnListenAll(t *testing.T) {
	for _, tc := range []struct {
		config string
		warn   bool
	}{
		{"org: x\n", true},
		{"org: x\nlisten: [/ip4/0.0.0.0/tcp/0]\n", false},
		{"org: x\nlisten: [/ip4/127.0.0.1/tcp/0]\n", false},
	} {
		home := filepath.Join(t.TempDir(), "org")
		if _, err := Init(home, "org", "test"); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(home, ConfigFile), tc.config)
		cfg, err := LoadConfig(home)
		if err != nil {
			t.Fatal(err)
		}
		var logs strings.Builder
		n, err := New(cfg, WithLogger(slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil))))
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		n.Close()
		if got := strings.Contains(logs.String(), "libp2p listens on every interface"); got != tc.warn {
			t.Errorf("config %q: warned %v, want %v:\n%s", tc.config, got, tc.warn, logs.String())
		}
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
