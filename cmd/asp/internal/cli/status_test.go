package cli

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aspnode/asp/node"
	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/testnet"
	"github.com/aspnode/asp/testnet/scenario"
)

// asp status of a running node counts what it holds; of a stopped one it
// fails with the reason.
func TestStatus(t *testing.T) {
	net := testnet.New(t, 2, testnet.WithConfig(func(i int, c *node.Config) {
		c.Witness.Interval = time.Second // witness rounds within the test
	}))
	buyer := net.CreateAgent(0, "buyer")
	vendor := net.CreateAgent(1, "vendor", "compute.gpu-hours")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := scenario.PlaySeedDeal(ctx, buyer, vendor, nil); err != nil {
		t.Fatal(err)
	}
	home := net.Nodes[1].Home
	code, stdout, stderr := run(t, "status", "--home", home, "--json")
	var info api.NodeInfo
	if err := json.Unmarshal([]byte(stdout), &info); code != ExitOK || err != nil || info.Status == nil {
		t.Fatalf("status --json: exit %d: %s %s (%v)", code, stdout, stderr, err)
	}
	st := info.Status
	if info.PeerID != net.Nodes[1].PeerID() || st.Agents != 1 || st.Commitments["ACTIVE"] != 1 ||
		st.Sessions["EXECUTING"] != 1 || st.LedgerSize == 0 || info.Peers == 0 || st.API != net.Nodes[1].APIURL() {
		t.Fatalf("status --json: %s", stdout)
	}
	// node-0, its counterparty, comes to witness its ledger.
	err := scenario.Await(ctx, func() bool {
		_, out, _ := run(t, "status", "--home", home, "--json")
		var info api.NodeInfo
		if json.Unmarshal([]byte(out), &info) != nil || info.Status == nil {
			return false
		}
		for _, w := range info.Status.Witnesses {
			if w.Org == net.Nodes[0].PeerID() && w.Size > 0 {
				return true
			}
		}
		return false
	})
	if err != nil {
		t.Fatalf("status never shows node-0 witnessing node-1: %v", err)
	}
	code, stdout, _ = run(t, "status", "--home", home)
	if !strings.Contains(stdout, "witnesses    "+net.Nodes[0].PeerID()+" cosigned size") {
		t.Errorf("status lacks the witness:\n%s", stdout)
	}
	for _, want := range []string{"peer id      " + info.PeerID, "commitments  1 ACTIVE", "agents       1", "1 connected"} {
		if code != ExitOK || !strings.Contains(stdout, want) {
			t.Errorf("status: exit %d, lacks %q:\n%s", code, want, stdout)
		}
	}
	net.Nodes[1].Stop()
	code, _, stderr = run(t, "status", "--home", home)
	if code != ExitFailure || !strings.Contains(stderr, "node not running") {
		t.Errorf("status of a stopped node: exit %d, %q", code, stderr)
	}
	code, _, stderr = run(t, "status", "--home", filepath.Join(t.TempDir(), "nowhere"))
	if code != ExitFailure || !strings.Contains(stderr, "no node home at") {
		t.Errorf("status of no home: exit %d, %q", code, stderr)
	}
}
