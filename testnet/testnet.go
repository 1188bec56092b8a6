// Package testnet builds networks of real ASP nodes inside a Go test: each
// a node.Node with its own temporary home, a libp2p host on 127.0.0.1 and
// its HTTP API on a free loopback port. Nodes bootstrap off node-0.
//
//	net := testnet.New(t, 2)
//	buyer := net.CreateAgent(0, "buyer")
//	vendor := net.CreateAgent(1, "vendor", "compute.gpu-hours")
//	deal, err := scenario.PlaySeedDeal(ctx, buyer, vendor, nil)
//
// Conditions are awaited by polling with a deadline (Await), never by
// sleeping. For networks of separate processes see package procnet.
package testnet

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aspnode/asp/node"
	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/node/client"
	"github.com/aspnode/asp/testnet/scenario"
)

// DefaultTimeout bounds every Await of a Net.
const DefaultTimeout = 60 * time.Second

// Option configures New.
type Option func(*config)

type config struct {
	configure func(i int, c *node.Config)
	nodeOpts  []node.Option
	logLevel  slog.Level
	timeout   time.Duration
}

// WithConfig lets f adjust node i's configuration before it starts (the
// test profile is already applied: loopback only, free ports).
func WithConfig(f func(i int, c *node.Config)) Option {
	return func(c *config) { c.configure = f }
}

// WithNodeOptions passes options to every node.New.
func WithNodeOptions(opts ...node.Option) Option {
	return func(c *config) { c.nodeOpts = append(c.nodeOpts, opts...) }
}

// WithLogLevel sets the level of the nodes' logs, written to the test log.
// Default: warn, or the level named by $ASP_TEST_LOG (debug, info, warn, error).
func WithLogLevel(l slog.Level) Option {
	return func(c *config) { c.logLevel = l }
}

// WithTimeout sets the deadline of the Await helpers. Default DefaultTimeout.
func WithTimeout(d time.Duration) Option {
	return func(c *config) { c.timeout = d }
}

// Net is a network of in-process nodes. Its methods fail the test on error.
type Net struct {
	t     testing.TB
	cfg   config
	Nodes []*Node
}

// Node is one node of a Net.
type Node struct {
	// Node is the running node; it changes on Restart.
	*node.Node
	// Name is "node-<i>".
	Name string
	// Home is the node's home directory.
	Home string

	net   *Net
	cfg   node.Config
	token string
	log   *testLog
}

// New starts n nodes, node-0 first, the others bootstrapping off node-0,
// and waits until every node has a peer. The nodes close when the test ends.
func New(t testing.TB, n int, opts ...Option) *Net {
	t.Helper()
	cfg := config{logLevel: slog.LevelWarn, timeout: DefaultTimeout}
	if l := os.Getenv("ASP_TEST_LOG"); l != "" {
		_ = cfg.logLevel.UnmarshalText([]byte(l))
	}
	for _, o := range opts {
		o(&cfg)
	}
	net := &Net{t: t, cfg: cfg}
	dir := t.TempDir()
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("node-%d", i)
		home := filepath.Join(dir, name)
		c, err := node.Init(home, name, "test")
		if err != nil {
			t.Fatalf("testnet: %v", err)
		}
		c.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
		if i > 0 {
			c.Bootstrap = []string{net.Nodes[0].LoopbackAddr()}
		}
		if cfg.configure != nil {
			cfg.configure(i, &c)
		}
		tok, err := node.ReadAdminToken(home)
		if err != nil {
			t.Fatalf("testnet: %v", err)
		}
		nd := &Node{Name: name, Home: home, net: net, cfg: c, token: tok}
		nd.start()
		net.Nodes = append(net.Nodes, nd)
	}
	if n > 1 {
		net.Await("every node has a peer", func() bool {
			for _, nd := range net.Nodes {
				if len(nd.Host().Host().Network().Peers()) == 0 {
					return false
				}
			}
			return true
		})
	}
	return net
}

func (nd *Node) start() {
	t := nd.net.t
	t.Helper()
	nd.log = newTestLog(t, nd.Name)
	opts := append([]node.Option{node.WithLogger(slog.New(slog.NewTextHandler(nd.log, &slog.HandlerOptions{Level: nd.net.cfg.logLevel})))}, nd.net.cfg.nodeOpts...)
	n, err := node.New(nd.cfg, opts...)
	if err != nil {
		t.Fatalf("testnet: %s: %v", nd.Name, err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatalf("testnet: start %s: %v", nd.Name, err)
	}
	nd.Node = n
	t.Cleanup(func() {
		if nd.Node == n {
			nd.Stop()
		}
	})
}

// Stop closes the node (gracefully). Restart starts it again.
func (nd *Node) Stop() {
	if nd.Node == nil {
		return
	}
	if err := nd.Node.Close(); err != nil {
		nd.net.t.Errorf("testnet: close %s: %v", nd.Name, err)
	}
	nd.log.close()
	nd.Node = nil
}

// Restart closes the node if it runs and starts it again on the same home;
// its addresses and API port change.
func (nd *Node) Restart() {
	nd.net.t.Helper()
	nd.Stop()
	nd.start()
}

// Admin returns a client acting as the node's administrator.
func (nd *Node) Admin() *client.Client {
	return client.New(nd.APIURL(), nd.token)
}

// LoopbackAddr returns the node's TCP multiaddr on 127.0.0.1 with its peer id.
func (nd *Node) LoopbackAddr() string {
	for _, a := range nd.Host().Addrs() {
		s := a.String()
		if strings.HasPrefix(s, "/ip4/127.0.0.1/tcp/") {
			return s + "/p2p/" + nd.PeerID()
		}
	}
	nd.net.t.Fatalf("testnet: %s has no loopback TCP address", nd.Name)
	return ""
}

// CreateAgent creates an agent named role on node i (role-2... if taken).
func (net *Net) CreateAgent(i int, role string, caps ...string) *scenario.Agent {
	net.t.Helper()
	nd := net.Nodes[i]
	if caps == nil {
		caps = []string{}
	}
	ctx, cancel := net.Context()
	defer cancel()
	a, err := scenario.CreateAgent(ctx, nd.Admin(), nd.Name, role, caps, role)
	if err != nil {
		net.t.Fatalf("testnet: %v", err)
	}
	return a
}

// Context returns a context that ends at the Net's await deadline.
func (net *Net) Context() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), net.cfg.timeout)
}

// Await polls cond until it holds, failing the test with what when the
// deadline passes.
func (net *Net) Await(what string, cond func() bool) {
	net.t.Helper()
	ctx, cancel := net.Context()
	defer cancel()
	if err := scenario.Await(ctx, cond); err != nil {
		net.t.Fatalf("testnet: waiting for %s: %v", what, err)
	}
}

// AwaitCommitment waits until every listed node (all when none are) shows
// the commitment in state, and returns their views in the order of nodes.
func (net *Net) AwaitCommitment(id, state string, nodes ...int) []api.CommitmentInfo {
	net.t.Helper()
	if len(nodes) == 0 {
		for i := range net.Nodes {
			nodes = append(nodes, i)
		}
	}
	ctx, cancel := net.Context()
	defer cancel()
	var views []api.CommitmentInfo
	for _, i := range nodes {
		nd := net.Nodes[i]
		info, err := scenario.AwaitCommitment(ctx, nd.Admin(), id, state)
		if err != nil {
			net.t.Fatalf("testnet: %s: %v", nd.Name, err)
		}
		views = append(views, info)
	}
	return views
}

// testLog writes a node's log lines to the test log until closed: logging
// after a test completed would panic.
type testLog struct {
	mu     sync.Mutex
	t      testing.TB
	prefix string
	closed bool
}

func newTestLog(t testing.TB, name string) *testLog {
	return &testLog{t: t, prefix: name + ": "}
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.t.Log(l.prefix + strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (l *testLog) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
}
