package cli

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/testnet"
	"github.com/aspnode/asp/testnet/scenario"
)

// The agent and audit commands against a running node.
func TestRunningNode(t *testing.T) {
	net := testnet.New(t, 1)
	home := net.Nodes[0].Home

	code, stdout, stderr := run(t, "agent", "add", "vendor", "--home", home, "--capability", "compute.gpu-hours", "--json")
	if code != ExitOK {
		t.Fatalf("agent add: exit %d: %s", code, stderr)
	}
	var added api.CreateAgentResponse
	if err := json.Unmarshal([]byte(stdout), &added); err != nil || !strings.HasSuffix(added.AgentID, "/vendor") || added.Token == "" {
		t.Fatalf("agent add --json: %q (%v)", stdout, err)
	}
	code, _, stderr = run(t, "agent", "add", "vendor", "--home", home)
	if code != ExitFailure || !strings.Contains(stderr, "duplicate") {
		t.Errorf("agent add twice: exit %d, %q", code, stderr)
	}
	code, stdout, _ = run(t, "agent", "list", "--home", home, "--json")
	var list api.AgentList
	if err := json.Unmarshal([]byte(stdout), &list); code != ExitOK || err != nil || len(list.Agents) != 1 || list.Agents[0].AgentID != added.AgentID {
		t.Errorf("agent list --json: exit %d: %q (%v)", code, stdout, err)
	}
	code, stdout, _ = run(t, "agent", "list", "--home", home)
	if code != ExitOK || !strings.Contains(stdout, "compute.gpu-hours") {
		t.Errorf("agent list: exit %d: %q", code, stdout)
	}

	// The running node holds its store's lock: audit reads a snapshot.
	code, stdout, stderr = run(t, "audit", "verify", "--home", home, "--json")
	var res VerifyResult
	if err := json.Unmarshal([]byte(stdout), &res); code != ExitOK || err != nil || !res.OK || !res.Snapshot || res.Size == 0 {
		t.Errorf("audit verify of a running node: exit %d: %s %s (%v)", code, stdout, stderr, err)
	}
}

// Verifying a running node's ledger while it records deals: every
// snapshot is consistent.
func TestAuditVerifyUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("plays deals for a while")
	}
	net := testnet.New(t, 2)
	buyer := net.CreateAgent(0, "buyer")
	vendor := net.CreateAgent(1, "vendor", "compute.gpu-hours")
	// Deals run until the verifications are done (slow under -race).
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := scenario.PlaySeedDeal(ctx, buyer, vendor, nil); err != nil {
					t.Errorf("deal: %v", err)
					return
				}
			}
		}()
	}
	for i := 0; i < 6; i++ {
		for _, nd := range net.Nodes {
			code, stdout, stderr := run(t, "audit", "verify", "--home", nd.Home, "--json")
			if code != ExitOK {
				t.Errorf("audit verify %s while it records (round %d): exit %d: %s %s", nd.Name, i, code, stdout, stderr)
			}
		}
	}
	close(done)
	wg.Wait()
}
