package node

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/node/api"
	"github.com/libp2p/go-libp2p/core/peer"
)

// startNode initialises a home in a temp dir and starts a real node on
// loopback (libp2p over TCP and QUIC, Pebble on disk, real keys).
func startNode(t testing.TB, home string, bootstrap ...string) *Node {
	t.Helper()
	return startNodeWith(t, home, func(c *Config) { c.Bootstrap = bootstrap })
}

// startNodeWith is startNode with edit applied to the home's configuration.
func startNodeWith(t testing.TB, home string, edit func(*Config)) *Node {
	t.Helper()
	if _, err := os.Stat(filepath.Join(home, ConfigFile)); err != nil {
		if _, err := Init(home, filepath.Base(home), "test"); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := LoadConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	edit(&cfg)
	var log *slog.Logger
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	opts := []Option{}
	if log != nil {
		opts = append(opts, WithLogger(log))
	}
	n, err := New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return n
}

// connect makes a and b know each other's addresses.
func connect(t testing.TB, a, b *Node) {
	t.Helper()
	ai := peer.AddrInfo{ID: b.host.ID(), Addrs: b.host.Addrs()}
	if err := a.host.Connect(context.Background(), ai); err != nil {
		t.Fatal(err)
	}
}

type pair struct {
	buyerNode, vendorNode *Node
	buyer, vendor         string // agent ids
}

func newPair(t testing.TB) *pair {
	t.Helper()
	dir := t.TempDir()
	a := startNode(t, filepath.Join(dir, "buyer-org"))
	b := startNode(t, filepath.Join(dir, "vendor-org"))
	t.Cleanup(func() { a.Close(); b.Close() })
	connect(t, a, b)
	return withAgents(t, a, b)
}

// withAgents adds the buyer agent on a and the vendor agent on b.
func withAgents(t testing.TB, a, b *Node) *pair {
	t.Helper()
	ctx := context.Background()
	ra, err := a.CreateAgent(ctx, api.CreateAgentRequest{Name: "buyer", Capabilities: []string{"procurement"}})
	if err != nil {
		t.Fatal(err)
	}
	rb, err := b.CreateAgent(ctx, api.CreateAgentRequest{Name: "vendor", Capabilities: []string{"compute.gpu-hours"}})
	if err != nil {
		t.Fatal(err)
	}
	return &pair{buyerNode: a, vendorNode: b, buyer: ra.AgentID, vendor: rb.AgentID}
}

func terms(price string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"resource":"gpu-hours","quantity":"1000","unit":"hour","unitPrice":%q,"currency":"USD","deliverBy":"2027-03-15T00:00:00.000Z","penalty":"5%% per day late"}`, price))
}

// seedDeal plays the seed scenario and returns the commitment id.
func seedDeal(t testing.TB, p *pair) string {
	t.Helper()
	ctx := context.Background()
	s, err := p.buyerNode.OpenSession(ctx, p.buyer, api.OpenSessionRequest{To: p.vendor})
	if err != nil {
		t.Fatal(err)
	}
	if s.State != "INTRODUCED" {
		t.Fatalf("session state after invitation = %s, want INTRODUCED", s.State)
	}
	send := func(n *Node, from, perf string, tm json.RawMessage) api.SendMessageResult {
		t.Helper()
		r, err := n.SendMessage(ctx, from, s.SessionID, api.SendMessageRequest{Performative: perf, Terms: tm})
		if err != nil {
			t.Fatalf("%s %s: %v", from, perf, err)
		}
		return r
	}
	send(p.buyerNode, p.buyer, "PROPOSE", terms("2.40"))
	send(p.vendorNode, p.vendor, "COUNTER", terms("2.80"))
	send(p.buyerNode, p.buyer, "PROPOSE", terms("2.55"))
	r := send(p.vendorNode, p.vendor, "ACCEPT", nil)
	if r.CommitmentID == "" {
		t.Fatal("ACCEPT formed no commitment")
	}
	return r.CommitmentID
}

// awaitActive polls until the commitment is ACTIVE on n.
func awaitActive(t testing.TB, n *Node, id string) api.CommitmentInfo {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := n.Commitment(context.Background(), api.Principal{Admin: true}, id)
		if err == nil && c.State == "ACTIVE" {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("commitment %s on %s: state %q err %v, want ACTIVE", id, n.peerID, c.State, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSeedDealEndToEnd(t *testing.T) {
	p := newPair(t)
	id := seedDeal(t, p)
	cb := awaitActive(t, p.buyerNode, id)
	cv := awaitActive(t, p.vendorNode, id)
	for _, c := range []api.CommitmentInfo{cb, cv} {
		if len(c.Signatures) != 2 || len(c.Receipts) != 2 {
			t.Fatalf("commitment has %d signatures, %d receipts; want 2 and 2", len(c.Signatures), len(c.Receipts))
		}
		var tm map[string]any
		if err := json.Unmarshal(c.Terms, &tm); err != nil || tm["unitPrice"] != "2.55" {
			t.Fatalf("terms %s, want unitPrice 2.55", c.Terms)
		}
	}
	orgs := map[string]bool{}
	for _, r := range cb.Receipts {
		orgs[r.Org] = true
	}
	if !orgs[p.buyerNode.peerID] || !orgs[p.vendorNode.peerID] {
		t.Fatalf("receipts from %v, want both organisations", orgs)
	}
	for _, n := range []*Node{p.buyerNode, p.vendorNode} {
		if err := n.led.Check(context.Background()); err != nil {
			t.Fatalf("ledger check on %s: %v", n.peerID, err)
		}
	}
}

func TestRestartKeepsCommitments(t *testing.T) {
	p := newPair(t)
	id := seedDeal(t, p)
	awaitActive(t, p.vendorNode, id)
	awaitActive(t, p.buyerNode, id)
	home := p.vendorNode.cfg.Home
	if err := p.vendorNode.Close(); err != nil {
		t.Fatal(err)
	}
	v2 := startNode(t, home)
	defer v2.Close()
	c := awaitActive(t, v2, id)
	if len(c.Receipts) != 2 {
		t.Fatalf("after restart: %d receipts", len(c.Receipts))
	}
	if err := v2.led.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The session resumes: the vendor can close it.
	list, _ := v2.Sessions(context.Background(), api.Principal{Admin: true})
	if len(list) != 1 || list[0].State != "EXECUTING" {
		t.Fatalf("sessions after restart: %+v", list)
	}
}

func TestFulfilAndConfirm(t *testing.T) {
	p := newPair(t)
	id := seedDeal(t, p)
	awaitActive(t, p.vendorNode, id)
	awaitActive(t, p.buyerNode, id)
	ctx := context.Background()
	// The buyer cannot confirm before the vendor claims.
	if _, err := p.buyerNode.CommitmentAction(ctx, p.buyer, id, "confirm", nil); err == nil {
		t.Fatal("confirm before claim accepted")
	}
	if _, err := p.vendorNode.CommitmentAction(ctx, p.vendor, id, "fulfill", json.RawMessage(`{"evidence":{"hours":1000},"note":"delivered"}`)); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*Node{p.vendorNode, p.buyerNode} {
		c, _ := n.Commitment(ctx, api.Principal{Admin: true}, id)
		if c.State != "FULFILLMENT_CLAIMED" {
			t.Fatalf("after claim: %s", c.State)
		}
	}
	// The vendor cannot confirm its own claim.
	if _, err := p.vendorNode.CommitmentAction(ctx, p.vendor, id, "confirm", nil); err == nil {
		t.Fatal("claimant confirmed its own claim")
	}
	if _, err := p.buyerNode.CommitmentAction(ctx, p.buyer, id, "confirm", nil); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*Node{p.vendorNode, p.buyerNode} {
		c, _ := n.Commitment(ctx, api.Principal{Admin: true}, id)
		if c.State != "FULFILLED" {
			t.Fatalf("after confirm: %s", c.State)
		}
	}
	// State survives a restart on both sides.
	home := p.buyerNode.cfg.Home
	p.buyerNode.Close()
	b2 := startNode(t, home)
	defer b2.Close()
	c, err := b2.Commitment(ctx, api.Principal{Admin: true}, id)
	if err != nil || c.State != "FULFILLED" {
		t.Fatalf("after restart: %v %v", c.State, err)
	}
}

// Under the "ask" policy the invitation waits for the invited agent.
func TestConsentAsk(t *testing.T) {
	dir := t.TempDir()
	a := startNode(t, filepath.Join(dir, "a"))
	defer a.Close()
	b := startNodeWith(t, filepath.Join(dir, "b"), func(c *Config) { c.Consent = ConsentAsk })
	defer b.Close()
	connect(t, a, b)
	ctx := context.Background()
	ra, _ := a.CreateAgent(ctx, api.CreateAgentRequest{Name: "buyer"})
	rb, _ := b.CreateAgent(ctx, api.CreateAgentRequest{Name: "vendor"})
	events, cancel := b.Subscribe(rb.AgentID)
	defer cancel()
	s, err := a.OpenSession(ctx, ra.AgentID, api.OpenSessionRequest{To: rb.AgentID})
	if err != nil {
		t.Fatal(err)
	}
	if s.State != "INVITED" {
		t.Fatalf("state %s, want INVITED", s.State)
	}
	for got := false; !got; {
		select {
		case ev := <-events:
			got = ev.Type == "session"
		case <-time.After(5 * time.Second):
			t.Fatal("no session event for the invited agent")
		}
	}
	// Moves before the answer are refused.
	if _, err := a.SendMessage(ctx, ra.AgentID, s.SessionID, api.SendMessageRequest{Performative: "PROPOSE", Terms: terms("2.40")}); err == nil {
		t.Fatal("PROPOSE accepted in an unanswered session")
	}
	got, err := b.RespondInvitation(ctx, rb.AgentID, s.SessionID, true)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != "INTRODUCED" {
		t.Fatalf("after accept: %s", got.State)
	}
	s2, _ := a.Session(ctx, api.Principal{Agent: ra.AgentID}, s.SessionID)
	if s2.State != "INTRODUCED" {
		t.Fatalf("initiator sees %s", s2.State)
	}
}

// A move made while the counterparty's node is down is recorded, refused to
// the agent as not yet acknowledged, and delivered when the node is back.
func TestResendAfterCounterpartyRestart(t *testing.T) {
	p := newPair(t)
	ctx := context.Background()
	s, err := p.buyerNode.OpenSession(ctx, p.buyer, api.OpenSessionRequest{To: p.vendor})
	if err != nil {
		t.Fatal(err)
	}
	vhome := p.vendorNode.cfg.Home
	if err := p.vendorNode.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = p.buyerNode.SendMessage(ctx, p.buyer, s.SessionID, api.SendMessageRequest{Performative: "PROPOSE", Terms: terms("2.40")})
	if err == nil || api.ErrorFor(err).Code != api.CodeTimeout {
		t.Fatalf("PROPOSE to a stopped node: %v, want a timeout error", err)
	}
	// The move is durable on the buyer's side and blocks the next one.
	if _, err := p.buyerNode.SendMessage(ctx, p.buyer, s.SessionID, api.SendMessageRequest{Performative: "QUERY", Body: json.RawMessage(`{"question":"still there?"}`)}); err == nil {
		t.Fatal("a second move went through while the first was pending")
	}
	var addrs []string
	for _, a := range p.buyerNode.host.Addrs() {
		addrs = append(addrs, a.String()+"/p2p/"+p.buyerNode.peerID)
	}
	v2 := startNode(t, vhome, addrs...)
	defer v2.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		vs, err := v2.Session(ctx, api.Principal{Agent: p.vendor}, s.SessionID)
		bs, _ := p.buyerNode.Session(ctx, api.Principal{Agent: p.buyer}, s.SessionID)
		if err == nil && vs.State == "AGREEING" && bs.State == "AGREEING" && len(vs.Messages) == 3 && len(bs.Messages) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after restart: vendor %+v (%v), buyer state %s", vs.State, err, bs.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The vendor can answer, and the deal closes.
	if _, err := v2.SendMessage(ctx, p.vendor, s.SessionID, api.SendMessageRequest{Performative: "ACCEPT"}); err != nil {
		t.Fatal(err)
	}
}

// After a deal is fulfilled, each organisation's ledger exports as a bundle
// that verifies offline: every signature inside every entry, and the
// checkpoint the counterparty holds in its receipt anchors the bundle.
func TestBundleVerifiesWithCounterpartyAnchor(t *testing.T) {
	p := newPair(t)
	id := seedDeal(t, p)
	awaitActive(t, p.vendorNode, id)
	awaitActive(t, p.buyerNode, id)
	ctx := context.Background()
	if _, err := p.vendorNode.CommitmentAction(ctx, p.vendor, id, "fulfill", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := p.buyerNode.CommitmentAction(ctx, p.buyer, id, "confirm", nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ owner, holder *Node }{{p.buyerNode, p.vendorNode}, {p.vendorNode, p.buyerNode}} {
		// The receipt of owner's organisation, as the counterparty holds it.
		c, err := tc.holder.Commitment(ctx, api.Principal{Admin: true}, id)
		if err != nil {
			t.Fatal(err)
		}
		var anchor []byte
		for _, r := range c.Receipts {
			if r.Org == tc.owner.peerID {
				anchor = []byte(r.Checkpoint)
			}
		}
		if anchor == nil {
			t.Fatalf("%s holds no receipt of %s", tc.holder.peerID, tc.owner.peerID)
		}
		path := filepath.Join(t.TempDir(), "bundle")
		if err := tc.owner.led.Export(ctx, path, ledger.BundleExtras{}); err != nil {
			t.Fatal(err)
		}
		rep, err := ledger.VerifyBundle(path, ledger.VerifyOptions{
			Org: tc.owner.peerID, VerifyEntry: ledger.VerifyProtocolBody, Anchors: [][]byte{anchor},
		})
		if err != nil {
			t.Fatalf("bundle of %s: %v", tc.owner.peerID, err)
		}
		if rep.Anchors != 1 || rep.Kinds[ledger.KindCommitment] != 1 || rep.Kinds[ledger.KindReceipt] != 2 {
			t.Fatalf("bundle of %s: %+v", tc.owner.peerID, rep)
		}
	}
}

// Terms may carry times in any RFC 3339 form, as CONTRACT.md writes them;
// the signed terms hold them in UTC with milliseconds.
func TestTermsTimesNormalised(t *testing.T) {
	p := newPair(t)
	ctx := context.Background()
	s, err := p.buyerNode.OpenSession(ctx, p.buyer, api.OpenSessionRequest{To: p.vendor})
	if err != nil {
		t.Fatal(err)
	}
	tm := json.RawMessage(`{"resource":"gpu-hours","quantity":"1000","unit":"hour","unitPrice":"2.55","currency":"USD","deliverBy":"2027-03-15T01:00:00+01:00"}`)
	if _, err := p.buyerNode.SendMessage(ctx, p.buyer, s.SessionID, api.SendMessageRequest{Performative: "PROPOSE", Terms: tm}); err != nil {
		t.Fatal(err)
	}
	r, err := p.vendorNode.SendMessage(ctx, p.vendor, s.SessionID, api.SendMessageRequest{Performative: "ACCEPT"})
	if err != nil {
		t.Fatal(err)
	}
	c := awaitActive(t, p.vendorNode, r.CommitmentID)
	var got map[string]any
	json.Unmarshal(c.Terms, &got)
	if got["deliverBy"] != "2027-03-15T00:00:00.000Z" {
		t.Fatalf("deliverBy %v, want 2027-03-15T00:00:00.000Z", got["deliverBy"])
	}
	bad := json.RawMessage(`{"resource":"gpu-hours","quantity":"1","unit":"hour","unitPrice":"1","currency":"USD","deliverBy":"2027-03-15T00:00:00.0001Z"}`)
	s2, _ := p.buyerNode.OpenSession(ctx, p.buyer, api.OpenSessionRequest{To: p.vendor})
	if _, err := p.buyerNode.SendMessage(ctx, p.buyer, s2.SessionID, api.SendMessageRequest{Performative: "PROPOSE", Terms: bad}); err == nil || api.ErrorFor(err).Code != api.CodeBadRequest {
		t.Fatalf("sub-millisecond deliverBy: %v, want bad_request", err)
	}
}
