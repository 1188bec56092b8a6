package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/testnet"
)

// The seed deal played from a shell: two organizations' agents negotiate,
// commit and settle through the agent verbs alone, on two real nodes.
func TestAgentVerbsPlayTheSeedDeal(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two real nodes")
	}
	t.Setenv(tokenEnv, "")
	net := testnet.New(t, 2)
	bh, vh := net.Nodes[0].Home, net.Nodes[1].Home
	add := func(home, name, capability string, extra ...string) api.CreateAgentResponse {
		t.Helper()
		code, stdout, stderr := run(t, append([]string{"agent", "add", name, "--home", home, "--capability", capability, "--json"}, extra...)...)
		var r api.CreateAgentResponse
		if code != ExitOK || json.Unmarshal([]byte(stdout), &r) != nil {
			t.Fatalf("agent add %s: exit %d: %s %s", name, code, stdout, stderr)
		}
		return r
	}
	buyer := add(bh, "buyer", "procurement", "--save-token")
	vendor := add(vh, "vendor", "compute.gpu-hours")
	must := func(args ...string) string {
		t.Helper()
		code, stdout, stderr := run(t, args...)
		if code != ExitOK {
			t.Fatalf("asp %s: exit %d: %s", strings.Join(args, " "), code, stderr)
		}
		return stdout
	}
	decode := func(out string, v any) {
		t.Helper()
		if err := json.Unmarshal([]byte(out), v); err != nil {
			t.Fatalf("%v: %q", err, out)
		}
	}

	// A verb acting for an agent wants its token.
	if code, _, stderr := run(t, "session", "open", "--to", vendor.AgentID, "--home", bh); code != ExitUsage || !strings.Contains(stderr, "token") {
		t.Fatalf("session open without a token: exit %d: %s", code, stderr)
	}
	var s api.SessionInfo
	decode(must("session", "open", "--to", vendor.AgentID, "--home", bh, "--token", buyer.Token, "--json"), &s)
	if s.State != "INTRODUCED" {
		t.Fatalf("session open: %+v", s)
	}
	offer := func(price string) string {
		return `{"resource":"gpu-hours","quantity":"1000","unit":"hour","unitPrice":"` + price + `","currency":"USD","deliverBy":"2027-03-15T00:00:00Z"}`
	}
	var r api.SendMessageResult
	decode(must("session", "send", s.SessionID, "propose", "--terms", offer("2.40"), "--home", bh, "--token", buyer.Token, "--json"), &r)
	decode(must("session", "send", s.SessionID, "COUNTER", "--ref", r.MessageID, "--terms", offer("2.80"), "--home", vh, "--token", vendor.Token, "--json"), &r)
	// The buyer's token kept in its node's home: --agent NAME.
	decode(must("session", "send", s.SessionID, "PROPOSE", "--terms", offer("2.55"), "--home", bh, "--agent", "buyer", "--json"), &r)
	decode(must("session", "send", s.SessionID, "ACCEPT", "--ref", r.MessageID, "--home", vh, "--token", vendor.Token, "--json"), &r)
	if r.CommitmentID == "" {
		t.Fatalf("ACCEPT formed no commitment: %+v", r)
	}
	id := r.CommitmentID
	net.Await("the commitment is ACTIVE on both nodes", func() bool {
		for _, h := range []string{bh, vh} {
			_, out, _ := run(t, "commitment", "show", id, "--home", h, "--json")
			var c api.CommitmentInfo
			if json.Unmarshal([]byte(out), &c) != nil || c.State != "ACTIVE" {
				return false
			}
		}
		return true
	})
	// The transcript and the lists, in tables.
	if out := must("session", "show", s.SessionID, "--home", bh); !strings.Contains(out, "1000 hour at 2.55 USD") || !strings.Contains(out, "COUNTER") {
		t.Errorf("session show:\n%s", out)
	}
	if out := must("session", "list", "--home", vh, "--token", vendor.Token); !strings.Contains(out, s.SessionID) {
		t.Errorf("session list:\n%s", out)
	}
	if out := must("commitment", "list", "--home", bh); !strings.Contains(out, id) || !strings.Contains(out, "ACTIVE") {
		t.Errorf("commitment list:\n%s", out)
	}
	// Settled from the shell.
	must("commitment", "fulfill", id, "--evidence", `{"hours":1000}`, "--home", vh, "--token", vendor.Token)
	out := must("commitment", "confirm", id, "--home", bh, "--token", buyer.Token)
	if !strings.Contains(out, "FULFILLED") {
		t.Fatalf("commitment confirm:\n%s", out)
	}
	// The vendor's view of the buyer, and the buyer's events so far.
	var tr api.TrustInfo
	decode(must("trust", buyer.AgentID, "--home", vh, "--json"), &tr)
	if tr.AgentID != buyer.AgentID {
		t.Errorf("trust: %+v", tr)
	}
	// Discovery finds the vendor by its capability.
	net.Await("the vendor is discoverable", func() bool {
		_, out, _ := run(t, "discover", "--capability", "compute.gpu-hours", "--home", bh)
		return strings.Contains(out, vendor.AgentID)
	})
	// A wrong move is one plain line and exit 1.
	if code, _, stderr := run(t, "session", "send", s.SessionID, "ACCEPT", "--ref", "no-such-offer", "--home", bh, "--token", buyer.Token); code != ExitFailure || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Errorf("an ACCEPT of no offer: exit %d: %q", code, stderr)
	}
	// The buyer's events, replayed from before the first: the stream says
	// where it starts, then the session's events follow.
	out = must("events", "--since", "1", "--count", "3", "--home", bh, "--token", buyer.Token, "--json")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 3 || !strings.Contains(out, `"type"`) {
		t.Errorf("events:\n%s", out)
	}
}
