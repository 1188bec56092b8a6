package node

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aspnode/asp/node/api"
)

// clockedVendor is a vendor organisation's node whose clock runs ahead of
// the wall clock by offset, and its vendor agent.
type clockedVendor struct {
	n      *Node
	vendor string // agent id
	offset *atomic.Int64
}

// clock is the node's clock: now, plus the offset.
func (c *clockedVendor) clock() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// startClockedVendor starts a fresh vendor node with edit applied to its
// configuration and a clock the test moves with offset, and adds the
// vendor agent. The node is closed when the test ends.
func startClockedVendor(t *testing.T, edit func(*Config)) *clockedVendor {
	t.Helper()
	c := &clockedVendor{offset: new(atomic.Int64)}
	home := filepath.Join(t.TempDir(), "vendor-org")
	if _, err := Init(home, "vendor-org", "test"); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(&cfg)
	}
	v, err := New(cfg, WithClock(c.clock))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := v.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	ra, err := v.CreateAgent(ctx, api.CreateAgentRequest{Name: "vendor", Capabilities: []string{"compute.gpu-hours"}})
	if err != nil {
		t.Fatal(err)
	}
	c.n, c.vendor = v, ra.AgentID
	return c
}
