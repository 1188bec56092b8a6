package node

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/node/client"
)

// TestDisputesThroughTheAPI drives a dispute over HTTP with the Go SDK:
// the admin sets the policy (recorded in the ledger, kept in config.yaml,
// a bad one refused), the buyer files with the v2 body (201 {disputeId}),
// the vendor sees it and offers a remedy, the buyer rejects it: HUMAN on
// both nodes; the commitment shows its obligations and the dispute.
func TestDisputesThroughTheAPI(t *testing.T) {
	d := newDisputePair(t)
	ctx := context.Background()
	agent := func(n *Node, name string) (string, *client.Client) {
		r, err := n.CreateAgent(ctx, api.CreateAgentRequest{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		return r.AgentID, client.New(n.APIURL(), r.Token)
	}
	var bc, vc *client.Client
	d.buyer, bc = agent(d.buyerNode, "buyer2")
	d.vendor, vc = agent(d.vendorNode, "vendor2")
	tok, err := ReadAdminToken(d.buyerNode.cfg.Home)
	if err != nil {
		t.Fatal(err)
	}
	admin := client.New(d.buyerNode.APIURL(), tok)

	size := recordedSize(t, d.buyerNode)
	if _, err := admin.SetDisputePolicy(ctx, api.DisputePolicy{OnBreach: "sometimes"}); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("bad policy: %v", err)
	}
	if recordedSize(t, d.buyerNode) != size {
		t.Fatal("a refused policy was recorded")
	}
	p, err := admin.SetDisputePolicy(ctx, api.DisputePolicy{OnBreach: "ask", NegotiateFor: "3h", DefaultArbiters: []string{d.vendor}})
	if err != nil || p.OnBreach != "ask" || p.NegotiateFor != "3h0m0s" || p.RespondWithin != "72h0m0s" {
		t.Fatalf("policy: %+v, %v", p, err)
	}
	if got, err := admin.DisputePolicy(ctx); err != nil || got.NegotiateFor != p.NegotiateFor {
		t.Fatalf("policy read back: %+v, %v", got, err)
	}
	if b, _ := os.ReadFile(filepath.Join(d.buyerNode.cfg.Home, ConfigFile)); !strings.Contains(string(b), "onBreach: ask") {
		t.Fatalf("config.yaml does not keep the policy:\n%s", b)
	}
	if rep := verifyLedger(t, d.buyerNode); rep.Kinds[ledger.KindPolicy] != 2 {
		t.Fatalf("policy records: %d, want 2 (the configured one at start, then this one)", rep.Kinds[ledger.KindPolicy])
	}

	id := d.deal(t, d.clock().Add(time.Hour))
	did, err := bc.FileDispute(ctx, id, api.FileDisputeRequest{Grounds: "non_delivery", Severity: 4, Claim: "refund 50%",
		Evidence: []json.RawMessage{json.RawMessage(`{"kind":"document","hash":"` + docHash("no shipment") + `","content":"` + b64("no shipment") + `"}`)}})
	if err != nil || !strings.HasPrefix(did, "dsp_") {
		t.Fatalf("file: %q, %v", did, err)
	}
	ds, err := vc.Disputes(ctx)
	if err != nil || len(ds) != 1 || ds[0].DisputeID != did || len(ds[0].Evidence) != 1 || ds[0].Severity != 4 {
		t.Fatalf("vendor's disputes: %+v, %v", ds, err)
	}
	if _, err := vc.OfferRemedy(ctx, did, "refund 20%", ""); err != nil {
		t.Fatal(err)
	}
	got, err := bc.RejectRemedy(ctx, did, "too little")
	if err != nil || got.State != "HUMAN" || len(got.Offers) != 2 {
		t.Fatalf("reject: %+v, %v", got, err)
	}
	if v, err := vc.DisputeCase(ctx, did); err != nil || v.State != "HUMAN" {
		t.Fatalf("vendor's case: %+v, %v", v, err)
	}
	c, err := bc.Commitment(ctx, id)
	if err != nil || c.State != "DISPUTED" || len(c.Disputes) != 1 || len(c.Obligations) != 2 || c.Obligations[0].Status != "disputed" {
		t.Fatalf("commitment: %+v, %v", c, err)
	}
	// Another agent of the node does not see it.
	_, other := agent(d.buyerNode, "other")
	if _, err := other.DisputeCase(ctx, did); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("other agent: %v", err)
	}
}

func docHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
