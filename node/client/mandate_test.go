package client_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/node/client"
	"github.com/aspnode/asp/testnet"
)

// The mandate routes on a real node: set, read back in normal form, and a
// malformed amount refused with its code.
func TestMandateOnRealNode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real node")
	}
	net := testnet.New(t, 1)
	admin, err := client.FromHome(net.Nodes[0].Home)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ag, err := admin.CreateAgent(ctx, api.CreateAgentRequest{Name: "buyer", Capabilities: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := admin.SetMandate(ctx, ag.AgentID, api.Mandate{MaxTotal: map[string]string{"USD": "2000"}, Resources: []string{"gpu-hours", "cpu-hours"}})
	if err != nil || m.Resources[0] != "cpu-hours" {
		t.Fatalf("SetMandate = %+v, %v", m, err)
	}
	if got, err := admin.Mandate(ctx, ag.AgentID); err != nil || got.MaxTotal["USD"] != "2000" {
		t.Fatalf("Mandate = %+v, %v", got, err)
	}
	_, err = admin.SetMandate(ctx, ag.AgentID, api.Mandate{MaxTotal: map[string]string{"USD": "two thousand"}})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 400 || ce.Code != api.CodeBadRequest {
		t.Fatalf("a malformed amount: %v", err)
	}
	// The invitation policy, through the same client.
	if c, err := admin.SetConsent(ctx, api.Consent{Consent: "ask"}); err != nil || c.Consent != "ask" || c.Deny == nil {
		t.Fatalf("SetConsent = %+v, %v", c, err)
	}
	if c, err := admin.RevokeOrg(ctx, "12D3KooWCwzTWdvNWbcsSTvedoRKDpaVszFD3apLRYJcLmtHhWQf"); err != nil || len(c.Deny) != 1 {
		t.Fatalf("RevokeOrg = %+v, %v", c, err)
	}
	if c, err := admin.Consent(ctx); err != nil || c.Consent != "ask" || len(c.Deny) != 1 {
		t.Fatalf("Consent = %+v, %v", c, err)
	}
	// The agent itself may not set its own mandate.
	if _, err := admin.WithToken(ag.Token).SetMandate(ctx, ag.AgentID, api.Mandate{}); !errors.As(err, &ce) || ce.Status != 403 {
		t.Fatalf("an agent setting its own mandate: %v", err)
	}
}
