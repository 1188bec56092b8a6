package node

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/protocol"
)

// A buyer's mandate is checked before it signs: an offer beyond it is
// refused with the limit named and nothing is recorded; within it the seed
// deal closes; a day's budget counts the commitments already formed; the
// vendor, who is paid, is not held to money limits.
func TestMandateRefusesBeforeSigning(t *testing.T) {
	p := newPair(t)
	ctx := context.Background()
	set := func(n *Node, agent string, m api.Mandate) {
		t.Helper()
		if _, err := n.SetMandate(ctx, agent, m); err != nil {
			t.Fatal(err)
		}
	}
	code := func(err error) string {
		if err == nil {
			return ""
		}
		return api.ErrorFor(err).Code
	}
	set(p.buyerNode, p.buyer, api.Mandate{MaxTotal: map[string]string{"USD": "2000.00"}})
	s, err := p.buyerNode.OpenSession(ctx, p.buyer, api.OpenSessionRequest{To: p.vendor})
	if err != nil {
		t.Fatal(err)
	}
	size := p.buyerNode.led.Size()
	_, err = p.buyerNode.SendMessage(ctx, p.buyer, s.SessionID, api.SendMessageRequest{Performative: "PROPOSE", Terms: terms("2.40")})
	if code(err) != protocol.CodeBudgetExceeded || !strings.Contains(err.Error(), "2400") || !strings.Contains(err.Error(), "2000.00") {
		t.Fatalf("an offer of 2400 USD under a mandate of 2000: %v", err)
	}
	if api.ErrorFor(err).Status != 403 {
		t.Errorf("budget_exceeded answers %d, want 403", api.ErrorFor(err).Status)
	}
	if got := p.buyerNode.led.Size(); got != size {
		t.Fatalf("a refused offer changed the ledger: %d entries, then %d", size, got)
	}
	// Raised: the deal closes.
	set(p.buyerNode, p.buyer, api.Mandate{MaxTotal: map[string]string{"USD": "5000"}, BudgetPerDay: map[string]string{"USD": "4000"}})
	send := func(n *Node, from, perf string, tm json.RawMessage) (api.SendMessageResult, error) {
		return n.SendMessage(ctx, from, s.SessionID, api.SendMessageRequest{Performative: perf, Terms: tm})
	}
	for _, m := range []struct {
		n          *Node
		from, perf string
		tm         json.RawMessage
	}{
		{p.buyerNode, p.buyer, "PROPOSE", terms("2.40")},
		{p.vendorNode, p.vendor, "COUNTER", terms("2.80")},
		{p.buyerNode, p.buyer, "PROPOSE", terms("2.55")},
	} {
		if _, err := send(m.n, m.from, m.perf, m.tm); err != nil {
			t.Fatalf("%s within the mandate: %v", m.perf, err)
		}
	}
	// The vendor's mandate caps its spending at 100 USD; accepting the
	// buyer's offer it is the provider (the acceptor, the terms naming no
	// other), paid, not paying.
	set(p.vendorNode, p.vendor, api.Mandate{MaxTotal: map[string]string{"USD": "100"}, Resources: []string{"gpu-hours"}})
	if _, err := send(p.vendorNode, p.vendor, "ACCEPT", nil); err != nil {
		t.Fatalf("the vendor's ACCEPT: %v", err)
	}
	// A second deal of 2550 would bring the day to 5100, above 4000.
	s2, err := p.buyerNode.OpenSession(ctx, p.buyer, api.OpenSessionRequest{To: p.vendor})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.buyerNode.SendMessage(ctx, p.buyer, s2.SessionID, api.SendMessageRequest{Performative: "PROPOSE", Terms: terms("2.55")})
	if code(err) != protocol.CodeBudgetExceeded || !strings.Contains(err.Error(), "5100.00") {
		t.Fatalf("a second deal beyond the day's budget: %v", err)
	}
	// A resource, a deadline and a counterparty outside the mandate.
	set(p.buyerNode, p.buyer, api.Mandate{Resources: []string{"cpu-hours"}})
	_, err = p.buyerNode.SendMessage(ctx, p.buyer, s2.SessionID, api.SendMessageRequest{Performative: "PROPOSE", Terms: terms("1.00")})
	if code(err) != protocol.CodePolicyViolation || !strings.Contains(err.Error(), "gpu-hours") {
		t.Fatalf("an offer of another resource: %v", err)
	}
	set(p.buyerNode, p.buyer, api.Mandate{LatestDeadline: "2027-01-01T00:00:00Z"})
	_, err = p.buyerNode.SendMessage(ctx, p.buyer, s2.SessionID, api.SendMessageRequest{Performative: "PROPOSE", Terms: terms("1.00")})
	if code(err) != protocol.CodePolicyViolation || !strings.Contains(err.Error(), "latest deadline") {
		t.Fatalf("an offer past the latest deadline: %v", err)
	}
	set(p.buyerNode, p.buyer, api.Mandate{Counterparties: []string{p.buyerNode.peerID}})
	if _, err := p.buyerNode.OpenSession(ctx, p.buyer, api.OpenSessionRequest{To: p.vendor}); code(err) != protocol.CodePolicyViolation {
		t.Fatalf("a session with a counterparty outside the mandate: %v", err)
	}
	// The vendor's ACCEPT of an offer in a resource outside its mandate.
	set(p.buyerNode, p.buyer, api.Mandate{})
	if _, err := p.buyerNode.SendMessage(ctx, p.buyer, s2.SessionID, api.SendMessageRequest{Performative: "PROPOSE",
		Terms: json.RawMessage(`{"resource":"cpu-hours","quantity":"10","unit":"hour","unitPrice":"1.00","currency":"USD"}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.vendorNode.SendMessage(ctx, p.vendor, s2.SessionID, api.SendMessageRequest{Performative: "ACCEPT"}); code(err) != protocol.CodePolicyViolation {
		t.Fatalf("accepting an offer outside the mandate: %v", err)
	}
}

// A mandate is recorded in the ledger at each change, kept across a
// restart, and refused in bad forms.
func TestMandateRecordedAndKept(t *testing.T) {
	p := newPair(t)
	ctx := context.Background()
	m, err := p.buyerNode.SetMandate(ctx, p.buyer, api.Mandate{MaxUnitPrice: map[string]string{"USD": "2.50"},
		Counterparties: []string{p.vendorNode.peerID}, LatestDeadline: "2027-06-01T00:00:00+02:00"})
	if err != nil {
		t.Fatal(err)
	}
	if m.LatestDeadline != "2027-05-31T22:00:00.000Z" {
		t.Errorf("latest deadline in normal form: %s", m.LatestDeadline)
	}
	for _, bad := range []struct {
		m    api.Mandate
		code string
	}{
		{api.Mandate{MaxTotal: map[string]string{"USD": "2.5e3"}}, protocol.CodeBadRequest},
		{api.Mandate{BudgetPerDay: map[string]string{"": "10"}}, protocol.CodeBadRequest},
		{api.Mandate{LatestDeadline: "tomorrow"}, protocol.CodeBadRequest},
		{api.Mandate{MinTrust: 101}, protocol.CodeBadRequest},
		{api.Mandate{Counterparties: []string{"acme"}}, protocol.CodeBadRequest},
		{api.Mandate{ApprovalAbove: map[string]string{"USD": "1000"}}, api.CodeUnsupported},
	} {
		if _, err := p.buyerNode.SetMandate(ctx, p.buyer, bad.m); err == nil || api.ErrorFor(err).Code != bad.code {
			t.Errorf("mandate %+v: %v, want %s", bad.m, err, bad.code)
		}
	}
	if _, err := p.buyerNode.SetMandate(ctx, "agent://"+p.buyerNode.peerID+"/nobody", api.Mandate{}); err == nil || api.ErrorFor(err).Code != api.CodeNotFound {
		t.Errorf("mandate of an unknown agent: %v", err)
	}
	home := p.buyerNode.cfg.Home
	p.buyerNode.Close()
	b2 := startNode(t, home)
	defer b2.Close()
	got, err := b2.Mandate(ctx, p.buyer)
	if err != nil || got.MaxUnitPrice["USD"] != "2.50" || len(got.Counterparties) != 1 {
		t.Fatalf("mandate after restart: %+v %v", got, err)
	}
	ents, err := b2.led.ByKind(ledger.KindMandate, 0, 10)
	if err != nil || len(ents) != 1 {
		t.Fatalf("mandate records: %d, %v; want 1 (refused ones are not recorded)", len(ents), err)
	}
	rec, err := ledger.DecodeMandate(ents[0].Body)
	if err != nil || rec.Agent != p.buyer || !strings.Contains(string(rec.Mandate), `"maxUnitPrice":{"USD":"2.50"}`) {
		t.Fatalf("mandate record: %+v %v", rec, err)
	}
	if err := ledger.VerifyProtocolBody(ents[0]); err != nil {
		t.Fatalf("mandate record does not verify offline: %v", err)
	}
}
