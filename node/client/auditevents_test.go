package client_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/node/client"
	"github.com/aspnode/asp/testnet"
	"github.com/aspnode/asp/testnet/scenario"
)

// An agent records its organisation's business events on its node's
// ledger: each comes back with its index and hash, is in
// GET /v1/audit/entries, verifies offline (and a changed copy does not),
// reaches the agent's events, and the whole ledger still checks. Bad
// events are refused with a code and change nothing.
func TestBusinessEventsOnTheChain(t *testing.T) {
	net := testnet.New(t, 2)
	buyer := net.CreateAgent(0, "buyer")
	vendor := net.CreateAgent(1, "vendor", "compute.gpu-hours")
	ctx, cancel := net.Context()
	defer cancel()
	deal, err := scenario.PlaySeedDeal(ctx, buyer, vendor, nil)
	if err != nil {
		t.Fatal(err)
	}
	before, err := buyer.Client.RecentEvents(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}

	res, err := buyer.Client.RecordEvent(ctx, api.AuditEventRequest{Type: "order.created", CommitmentID: deal.CommitmentID,
		Data: []byte(`{ "order": "PO-1042", "total": "2550.00" }`)})
	if err != nil {
		t.Fatal(err)
	}
	page, err := buyer.Admin.Entries(ctx, res.Index, 1)
	if err != nil || len(page.Entries) != 1 {
		t.Fatalf("entries at %d: %+v %v", res.Index, page, err)
	}
	ei := page.Entries[0]
	if ei.Hash != res.Hash || ei.Commitment != deal.CommitmentID {
		t.Fatalf("entry %d is %+v; the answer said hash %s", res.Index, ei, res.Hash)
	}
	e := ledger.Entry{Index: ei.Index, Time: ei.Time, Kind: ledger.KindBusinessEvent, Session: ei.Session, Commitment: ei.Commitment, Body: ei.Body}
	if err := ledger.VerifyProtocolBody(e); err != nil {
		t.Fatalf("the recorded event does not verify offline: %v", err)
	}
	ev, err := ledger.DecodeBusinessEvent(ei.Body)
	if err != nil || ev.AgentID != buyer.ID || ev.Type != "order.created" || string(ev.Data) != `{"order":"PO-1042","total":"2550.00"}` {
		t.Fatalf("recorded %+v (%v)", ev, err)
	}
	e.Body = bytes.Replace(ei.Body, []byte("2550.00"), []byte("2550.01"), 1)
	if err := ledger.VerifyProtocolBody(e); err == nil {
		t.Fatal("a changed copy verifies")
	}
	after, err := buyer.Client.RecentEvents(ctx, before.Newest)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ev := range after.Events {
		found = found || ev.Type == "audit"
	}
	if !found {
		t.Errorf("no audit event after %d: %+v", before.Newest, after.Events)
	}
	if err := net.Nodes[0].Ledger().Check(ctx); err != nil {
		t.Fatal(err)
	}

	// Counted by kind: the node appends other entries of its own meanwhile
	// (witness anchors).
	businessEvents := func() int {
		t.Helper()
		ents, err := net.Nodes[0].Ledger().ByKind(ledger.KindBusinessEvent, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	size := businessEvents()
	for name, req := range map[string]api.AuditEventRequest{
		"bad type":           {Type: "Order Created", Data: []byte(`{}`)},
		"data not an object": {Type: "order.created", Data: []byte(`[1]`)},
		"no data":            {Type: "order.created"},
		"data too large":     {Type: "order.created", Data: []byte(`{"x":"` + strings.Repeat("a", ledger.MaxBusinessEventData) + `"}`)},
	} {
		if _, err := buyer.Client.RecordEvent(ctx, req); !errors.Is(err, client.ErrBadRequest) {
			t.Errorf("%s: %v, want bad_request", name, err)
		}
	}
	if _, err := buyer.Client.RecordEvent(ctx, api.AuditEventRequest{Type: "order.created", CommitmentID: "cmt_nope", Data: []byte(`{}`)}); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("unknown commitment: %v, want not_found", err)
	}
	if _, err := buyer.Admin.RecordEvent(ctx, api.AuditEventRequest{Type: "order.created", Data: []byte(`{}`)}); err == nil {
		t.Error("the admin token records an event")
	}
	if got := businessEvents(); got != size {
		t.Errorf("refused events were recorded: %d business events, was %d", got, size)
	}
	if _, err := hex.DecodeString(res.Hash); err != nil || len(res.Hash) != 64 {
		t.Errorf("hash %q", res.Hash)
	}
}
