package node

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aspnode/asp/node/api"
)

// A node closed while its timer loop is resending a move to a counterparty
// that is down shuts down cleanly: the loop finishes its request against a
// closed host instead of finding the host gone (a nil pointer, and under
// the race detector a data race on the node's fields). A second Close
// answers as the first did.
func TestCloseWhileResending(t *testing.T) {
	p := newPair(t)
	ctx := context.Background()
	s, err := p.buyerNode.OpenSession(ctx, p.buyer, api.OpenSessionRequest{To: p.vendor})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.vendorNode.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = p.buyerNode.SendMessage(ctx, p.buyer, s.SessionID, api.SendMessageRequest{Performative: "PROPOSE", Terms: terms("2.40")})
	if err == nil || api.ErrorFor(err).Code != api.CodeTimeout {
		t.Fatalf("PROPOSE to a stopped node: %v, want a timeout error", err)
	}
	// The loop has resent at least once, and goes on resending every second.
	for deadline := time.Now().Add(30 * time.Second); metric(t, p.buyerNode, "asp_resends_total") < 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no resend within 30 s")
		}
	}
	first := p.buyerNode.Close()
	if again := p.buyerNode.Close(); !errors.Is(again, first) && (again != nil || first != nil) {
		t.Fatalf("second Close = %v, first = %v", again, first)
	}
	// The closed node answers with errors, not panics.
	if _, err := p.buyerNode.Checkpoint(ctx); err == nil {
		t.Fatal("checkpoint of a closed node")
	}
}
