package node

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/protocol"
)

// Revoking an organisation at run time ends its live sessions on both
// sides with a signed CLOSE, refuses its invitations, is recorded, and
// survives a restart; lifting it lets the organisation back in.
func TestRevokeOrganisationAtRunTime(t *testing.T) {
	p := newPair(t)
	ctx := context.Background()
	s, err := p.buyerNode.OpenSession(ctx, p.buyer, api.OpenSessionRequest{To: p.vendor})
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.vendorNode.RevokeOrg(ctx, p.buyerNode.peerID)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Deny) != 1 || c.Deny[0] != p.buyerNode.peerID {
		t.Fatalf("consent after revoking: %+v", c)
	}
	for _, n := range []*Node{p.vendorNode, p.buyerNode} {
		info, err := n.Session(ctx, api.Principal{Admin: true}, s.SessionID)
		if err != nil || info.State != string(protocol.StateClosed) {
			t.Fatalf("session on %s after revoking: %s %v, want CLOSED (a signed CLOSE)", n.peerID, info.State, err)
		}
	}
	// The buyer's node is refused: a new invitation fails.
	if _, err := p.buyerNode.OpenSession(ctx, p.buyer, api.OpenSessionRequest{To: p.vendor}); err == nil {
		t.Fatal("an invitation from a revoked organisation was accepted")
	}
	// Recorded, and kept across a restart.
	home := p.vendorNode.cfg.Home
	p.vendorNode.Close()
	v2 := startNode(t, home)
	defer v2.Close()
	got, err := v2.Consent(ctx)
	if err != nil || len(got.Deny) != 1 || got.Deny[0] != p.buyerNode.peerID {
		t.Fatalf("consent after restart: %+v %v", got, err)
	}
	ents, err := v2.led.ByKind(ledger.KindConsent, 0, 10)
	if err != nil || len(ents) != 1 || ledger.VerifyProtocolBody(ents[0]) != nil {
		t.Fatalf("consent records: %d %v", len(ents), err)
	}
	// Lifted: the buyer deals again.
	if _, err := v2.SetConsent(ctx, api.Consent{Consent: ConsentAcceptAll}); err != nil {
		t.Fatal(err)
	}
	connect(t, p.buyerNode, v2)
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := p.buyerNode.OpenSession(ctx, p.buyer, api.OpenSessionRequest{To: p.vendor})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("invitation after the revocation was lifted: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Bad policies change nothing.
	for _, bad := range []api.Consent{{Consent: "maybe"}, {Deny: []string{"acme"}}, {MinTrust: -1}} {
		if _, err := v2.SetConsent(ctx, bad); err == nil || api.ErrorFor(err).Code != api.CodeBadRequest {
			t.Errorf("consent %+v: %v", bad, err)
		}
	}
	if _, err := v2.RevokeOrg(ctx, v2.peerID); err == nil {
		t.Error("a node revoked its own organisation")
	}
}

// SIGHUP's reload puts config.yaml's invitation policy in force over one
// set at run time, and records it.
func TestReloadConsentFromConfig(t *testing.T) {
	p := newPair(t)
	ctx := context.Background()
	v := p.vendorNode
	if _, err := v.SetConsent(ctx, api.Consent{Consent: ConsentAsk}); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(v.cfg.Home)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Consent, cfg.Deny = ConsentAllowList, []string{p.buyerNode.peerID}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(v.cfg.Home, ConfigFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := v.ReloadConsent(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := v.Consent(ctx)
	if err != nil || c.Consent != ConsentAllowList || len(c.Deny) != 1 || c.Deny[0] != p.buyerNode.peerID {
		t.Fatalf("consent after reload: %+v %v", c, err)
	}
	if ents, _ := v.led.ByKind(ledger.KindConsent, 0, 10); len(ents) != 2 {
		t.Fatalf("%d consent records, want 2", len(ents))
	}
	if _, err := p.buyerNode.OpenSession(ctx, p.buyer, api.OpenSessionRequest{To: p.vendor}); err == nil {
		t.Fatal("an invitation from an organisation denied by the reloaded config was accepted")
	}
}
