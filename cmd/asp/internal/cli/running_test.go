package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/testnet"
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
