package a2a_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	a2ago "github.com/a2aproject/a2a-go/a2a"

	"github.com/aspnode/asp/registry"
	"github.com/aspnode/asp/testnet"
)

func get(t *testing.T, ctx context.Context, u, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// parseA2A decodes a document as a2a-go's AgentCard, refusing any field
// the A2A type does not have, and checks what the A2A specification
// requires of a card; then verifies the signed ASP card inside.
func parseA2A(t *testing.T, b []byte, agentID string) a2ago.AgentCard {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var c a2ago.AgentCard
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("not an A2A AgentCard: %v\n%s", err, b)
	}
	if c.Name == "" || c.Description == "" || c.URL == "" || c.Version == "" || c.ProtocolVersion == "" ||
		c.DefaultInputModes == nil || c.DefaultOutputModes == nil || len(c.Skills) == 0 || c.Provider == nil || c.Provider.Org == "" {
		t.Fatalf("A2A card lacks a required field: %+v", c)
	}
	for _, s := range c.Skills {
		if s.ID == "" || s.Name == "" || s.Description == "" || s.Tags == nil {
			t.Fatalf("skill lacks a required field: %+v", s)
		}
	}
	var embedded *registry.Card
	for _, e := range c.Capabilities.Extensions {
		if e.URI == registry.A2ACardExtension {
			raw, _ := json.Marshal(e.Params["card"])
			embedded = new(registry.Card)
			if err := json.Unmarshal(raw, embedded); err != nil {
				t.Fatal(err)
			}
		}
	}
	if embedded == nil || embedded.AgentID != agentID {
		t.Fatalf("no signed card of %s inside: %+v", agentID, c.Capabilities)
	}
	if err := embedded.Verify(time.Now()); err != nil {
		t.Fatalf("the embedded card does not verify: %v", err)
	}
	return c
}

// Both A2A forms of a card parse as a2a-go's AgentCard and carry the
// signed card: the card route with ?format=a2a (token required, as for
// the card itself) and the node's well-known URI (public).
func TestA2ACards(t *testing.T) {
	net := testnet.New(t, 1)
	vendor := net.CreateAgent(0, "vendor", "compute.gpu-hours", "storage")
	other := net.CreateAgent(0, "zz-other", "freight")
	ctx, cancel := net.Context()
	defer cancel()
	base := net.Nodes[0].APIURL()

	cardURL := base + "/v1/agents/" + url.PathEscape(vendor.ID) + "/card?format=a2a"
	if code, b := get(t, ctx, cardURL, ""); code != http.StatusUnauthorized {
		t.Errorf("A2A card without a token: %d %s, want 401", code, b)
	}
	code, b := get(t, ctx, cardURL, vendor.Token)
	if code != http.StatusOK {
		t.Fatalf("A2A card: %d %s", code, b)
	}
	c := parseA2A(t, b, vendor.ID)
	if c.Name != "vendor" || len(c.Skills) != 2 || c.Skills[0].ID != "compute.gpu-hours" {
		t.Errorf("A2A card: name %q skills %+v", c.Name, c.Skills)
	}
	if code, b := get(t, ctx, base+"/v1/agents/"+url.PathEscape(vendor.ID)+"/card", vendor.Token); code != http.StatusOK || !json.Valid(b) || bytes.Contains(b, []byte("protocolVersion")) {
		t.Errorf("the card without format=a2a is the signed ASP card: %d %s", code, b)
	}

	code, b = get(t, ctx, base+"/.well-known/agent-card.json", "")
	if code != http.StatusOK {
		t.Fatalf("well-known card: %d %s", code, b)
	}
	parseA2A(t, b, vendor.ID) // the first agent by name
	code, b = get(t, ctx, base+"/.well-known/agent-card.json?agent=zz-other", "")
	if code != http.StatusOK {
		t.Fatalf("well-known card of zz-other: %d %s", code, b)
	}
	if c := parseA2A(t, b, other.ID); c.Skills[0].ID != "freight" {
		t.Errorf("zz-other's skills: %+v", c.Skills)
	}
	if code, _ := get(t, ctx, base+"/.well-known/agent-card.json?agent=nobody", ""); code != http.StatusNotFound {
		t.Errorf("well-known card of an unknown agent: %d, want 404", code)
	}
}
