package node

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/registry/attest"
	"github.com/aspnode/asp/registry/trust"
)

// A third organisation that took part in neither side of a deal sees the
// vendor's score move once the deal is fulfilled, exactly as the trust model
// computes it from the attestations it received over gossip.
func TestTrustSeenByThirdNode(t *testing.T) {
	p := newPair(t)
	obs := startNodeWith(t, filepath.Join(t.TempDir(), "observer-org"), func(c *Config) {
		c.PreTrusted = []string{p.buyerNode.peerID}
	})
	defer obs.Close()
	connect(t, obs, p.buyerNode)
	connect(t, obs, p.vendorNode)

	ctx := context.Background()
	before, _ := obs.Trust(ctx, p.vendor)

	id := seedDeal(t, p)
	awaitActive(t, p.vendorNode, id)
	awaitActive(t, p.buyerNode, id)
	if _, err := p.vendorNode.CommitmentAction(ctx, p.vendor, id, "fulfill", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := p.buyerNode.CommitmentAction(ctx, p.buyer, id, "confirm", nil); err != nil {
		t.Fatal(err)
	}
	// Both parties attest; the observer records both.
	deadline := time.Now().Add(15 * time.Second)
	var atts []*attest.Attestation
	for {
		ents, err := obs.led.ByKind(ledger.KindAttestation, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		atts = atts[:0]
		for _, e := range ents {
			a, err := attest.Decode(e.Body)
			if err != nil {
				t.Fatal(err)
			}
			atts = append(atts, a)
		}
		if len(atts) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("observer recorded %d attestations, want 2", len(atts))
		}
		time.Sleep(20 * time.Millisecond)
	}
	after, err := obs.Trust(ctx, p.vendor)
	if err != nil {
		t.Fatal(err)
	}
	if after.Completed != 1 || after.Score <= before.Score {
		t.Fatalf("vendor trust at the observer: before %+v, after %+v; want completed 1 and a higher score", before, after)
	}
	// What the model says for the same evidence, observer and time.
	m, _ := trust.New(trust.Config{PreTrusted: []string{p.buyerNode.peerID}})
	for _, a := range atts {
		if err := a.Verify(a.Time); err != nil {
			t.Fatal(err)
		}
		o, _ := trust.ParseOutcome(string(a.Outcome))
		m.Add(trust.Evidence{Attester: a.Attester, Subject: a.Subject, CommitmentID: a.CommitmentID, Outcome: o, Time: a.Time, Value: "2550.00"})
	}
	now := obs.now()
	want := m.Compute(obs.peerID, now).Explain(p.vendor)
	obs.ext.trust.mu.Lock()
	got := obs.ext.trust.model.Compute(obs.peerID, now).Explain(p.vendor)
	obs.ext.trust.mu.Unlock()
	if got.Score != want.Score || got.Completed != want.Completed {
		t.Fatalf("observer's score %+v, model's %+v", got, want)
	}
	// Discovery at the observer ranks with the same view.
	res, err := obs.Discover(ctx, api.DiscoverQuery{Capability: "compute", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Agents) != 1 || res.Agents[0].AgentID != p.vendor || res.Agents[0].Trust.Completed != 1 {
		t.Fatalf("discover compute: %+v", res)
	}
}

// An organisation that requires a minimum trust score declines invitations
// from agents below it, and the inviting agent is told why.
func TestInvitationBelowMinTrust(t *testing.T) {
	dir := t.TempDir()
	a := startNode(t, filepath.Join(dir, "a"))
	defer a.Close()
	b := startNodeWith(t, filepath.Join(dir, "b"), func(c *Config) { c.MinTrust = 50 })
	defer b.Close()
	connect(t, a, b)
	ctx := context.Background()
	ra, _ := a.CreateAgent(ctx, api.CreateAgentRequest{Name: "newcomer"})
	rb, _ := b.CreateAgent(ctx, api.CreateAgentRequest{Name: "vendor"})
	s, err := a.OpenSession(ctx, ra.AgentID, api.OpenSessionRequest{To: rb.AgentID})
	if err == nil || api.ErrorFor(err).Code != "insufficient_trust_score" {
		t.Fatalf("invitation below the trust threshold: %v, want insufficient_trust_score", err)
	}
	if s.State != "FAILED" {
		t.Fatalf("session %s, want FAILED", s.State)
	}
}
