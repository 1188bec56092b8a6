package node

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/protocol"
	"github.com/aspnode/asp/protocol/protocoltest"
)

// A pair of real nodes (libp2p on loopback, Pebble on disk) sharing a
// clock the test moves, for deadlines seconds away.
type dpair struct {
	*pair
	offset *atomic.Int64
}

func (d *dpair) clock() time.Time {
	return protocol.Millis(time.Now().Add(time.Duration(d.offset.Load())))
}

func (d *dpair) advance(by time.Duration) { d.offset.Add(int64(by)) }

func startClocked(t *testing.T, home string, clock func() time.Time, edit func(*Config)) *Node {
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
	if edit != nil {
		edit(&cfg)
	}
	n, err := New(cfg, WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return n
}

// newDisputePair starts a buyer whose policy files on a breach and a vendor.
func newDisputePair(t *testing.T) *dpair {
	t.Helper()
	d := &dpair{offset: new(atomic.Int64)}
	dir := t.TempDir()
	a := startClocked(t, filepath.Join(dir, "buyer-org"), d.clock, func(c *Config) {
		c.Disputes = DisputePolicy{OnBreach: OnBreachFile, RespondWithin: "1h", NegotiateFor: "2h"}
	})
	b := startClocked(t, filepath.Join(dir, "vendor-org"), d.clock, func(c *Config) {
		c.Disputes = DisputePolicy{RespondWithin: "1h", NegotiateFor: "2h"}
	})
	t.Cleanup(func() { a.Close(); b.Close() })
	connect(t, a, b)
	d.pair = withAgents(t, a, b)
	return d
}

// deal plays the seed negotiation with delivery due at deliverBy and
// returns the commitment, ACTIVE on both nodes.
func (d *dpair) deal(t *testing.T, deliverBy time.Time) string {
	t.Helper()
	return d.dealWith(t, deliverBy, "")
}

// dealWith is deal with extra terms fields (JSON members, each followed
// by a comma).
func (d *dpair) dealWith(t *testing.T, deliverBy time.Time, extra string) string {
	t.Helper()
	ctx := context.Background()
	s, err := d.buyerNode.OpenSession(ctx, d.buyer, api.OpenSessionRequest{To: d.vendor})
	if err != nil {
		t.Fatal(err)
	}
	tm := json.RawMessage(fmt.Sprintf(`{`+extra+`"resource":"gpu-hours","quantity":"1000","unit":"hour","unitPrice":"2.55","currency":"USD","deliverBy":%q,"penalty":"5%% per day late"}`,
		deliverBy.UTC().Truncate(time.Millisecond).Format(time.RFC3339Nano)))
	if _, err := d.buyerNode.SendMessage(ctx, d.buyer, s.SessionID, api.SendMessageRequest{Performative: "PROPOSE", Terms: tm}); err != nil {
		t.Fatal(err)
	}
	r, err := d.vendorNode.SendMessage(ctx, d.vendor, s.SessionID, api.SendMessageRequest{Performative: "ACCEPT"})
	if err != nil || r.CommitmentID == "" {
		t.Fatalf("accept: %+v, %v", r, err)
	}
	awaitActive(t, d.vendorNode, r.CommitmentID)
	awaitActive(t, d.buyerNode, r.CommitmentID)
	return r.CommitmentID
}

// awaitDispute polls until n holds a dispute on commitment id in state
// (at most 10 s: the nodes' timers run each second).
func awaitDispute(t *testing.T, n *Node, id, state string) api.DisputeInfo {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ds, _ := n.Disputes(context.Background(), api.Principal{Admin: true})
		for _, d := range ds {
			if d.CommitmentID == id && d.State == state {
				return d
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no dispute on %s in %s; holds %+v", n.peerID, id, state, ds)
		}
		n.watchDisputes(context.Background())
		time.Sleep(10 * time.Millisecond)
	}
}

func commitmentState(t *testing.T, n *Node, id string) api.CommitmentInfo {
	t.Helper()
	c, err := n.Commitment(context.Background(), api.Principal{Admin: true}, id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// verifyLedger exports n's ledger and verifies every entry's body,
// signatures included.
func verifyLedger(t *testing.T, n *Node) *ledger.BundleReport {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bundle")
	if err := n.led.Export(context.Background(), path, ledger.BundleExtras{}); err != nil {
		t.Fatal(err)
	}
	rep, err := ledger.VerifyBundle(path, ledger.VerifyOptions{Org: n.peerID, VerifyEntry: ledger.VerifyProtocolBody})
	if err != nil {
		t.Fatalf("ledger of %s: %v", n.peerID, err)
	}
	return rep
}

// TestBreachFiledRemedyAccepted: the vendor misses deliverBy; the buyer's
// node, whose policy files on a breach, files timeout_breach against the
// vendor; the vendor offers a remedy; the buyer accepts: the dispute and
// the commitment are RESOLVED on both nodes, the resolve action carries
// both agents' signatures, and both ledgers verify.
func TestBreachFiledRemedyAccepted(t *testing.T) {
	d := newDisputePair(t)
	ctx := context.Background()
	id := d.deal(t, d.clock().Add(30*time.Second))
	if c := commitmentState(t, d.buyerNode, id); len(c.Obligations) != 2 || c.Obligations[0].Key != "delivery" ||
		c.Obligations[0].Status != "pending" || c.Obligations[0].Obligor != d.vendor || c.Obligations[1].Obligor != d.buyer {
		t.Fatalf("obligations before the deadline: %+v", c.Obligations)
	}
	events, cancel := d.buyerNode.Subscribe(d.buyer)
	defer cancel()

	d.advance(31 * time.Second)
	filed := awaitDispute(t, d.buyerNode, id, "FILED")
	if filed.Grounds != "timeout_breach" || filed.FiledBy != d.buyer || filed.Against != d.vendor || filed.Obligation != "" {
		t.Fatalf("filed %+v", filed)
	}
	awaitDispute(t, d.vendorNode, id, "FILED")
	for _, n := range []*Node{d.buyerNode, d.vendorNode} {
		if c := commitmentState(t, n, id); c.State != "DISPUTED" || len(c.Disputes) != 1 || c.Disputes[0] != filed.DisputeID {
			t.Fatalf("%s: commitment %s, disputes %v", n.peerID, c.State, c.Disputes)
		}
	}
	if c := commitmentState(t, d.vendorNode, id); c.Obligations[0].Status != "disputed" {
		t.Fatalf("obligation on the vendor's node: %+v", c.Obligations)
	}
	sawBreach, sawFiled := false, false
	for !(sawBreach && sawFiled) {
		select {
		case ev := <-events:
			if ev.Type == "dispute" {
				data := ev.Data.(map[string]any)
				sawBreach = sawBreach || data["step"] == "breach"
				sawFiled = sawFiled || data["step"] == "filed"
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("dispute events: breach %v, filed %v", sawBreach, sawFiled)
		}
	}
	// A second filing on the same obligation and grounds is refused.
	if _, err := d.buyerNode.FileDispute(ctx, d.buyer, id, api.FileDisputeRequest{Grounds: "timeout_breach", Severity: 2, Claim: "again"}); codeOf(err) != "duplicate" {
		t.Fatalf("second filing: %v", err)
	}

	got, err := d.vendorNode.DisputeStep(ctx, d.vendor, filed.DisputeID, "remedy", api.DisputeStepRequest{Remedy: "deliver within 48h at 10% off"})
	if err != nil || got.State != "REMEDY_OFFERED" {
		t.Fatalf("remedy: %+v, %v", got, err)
	}
	if b := awaitDispute(t, d.buyerNode, id, "REMEDY_OFFERED"); b.Table != "deliver within 48h at 10% off" || b.TableBy != d.vendor {
		t.Fatalf("buyer's case: %+v", b)
	}
	// The vendor cannot accept its own remedy.
	if _, err := d.vendorNode.DisputeStep(ctx, d.vendor, filed.DisputeID, "accept", api.DisputeStepRequest{}); codeOf(err) != "invalid_transition" {
		t.Fatalf("own accept: %v", err)
	}
	got, err = d.buyerNode.DisputeStep(ctx, d.buyer, filed.DisputeID, "accept", api.DisputeStepRequest{})
	if err != nil || got.State != "RESOLVED" {
		t.Fatalf("accept: %+v, %v", got, err)
	}
	for _, n := range []*Node{d.buyerNode, d.vendorNode} {
		awaitDispute(t, n, id, "RESOLVED")
		if c := commitmentState(t, n, id); c.State != "RESOLVED" {
			t.Fatalf("%s: commitment %s, want RESOLVED", n.peerID, c.State)
		}
		rep := verifyLedger(t, n)
		if rep.Kinds[ledger.KindDispute] < 3 {
			t.Fatalf("%s: %d dispute records", n.peerID, rep.Kinds[ledger.KindDispute])
		}
	}
	// A step after the close is refused, and changes nothing.
	if _, err := d.vendorNode.DisputeStep(ctx, d.vendor, filed.DisputeID, "escalate", api.DisputeStepRequest{}); codeOf(err) != "invalid_transition" {
		t.Fatalf("step after close: %v", err)
	}
}

// TestRemedyRejectedEscalates: a rejected claim escalates the case on
// both nodes (HUMAN: the terms name no arbiter), and the parties' nodes
// keep it across a restart.
func TestRemedyRejectedEscalates(t *testing.T) {
	d := newDisputePair(t)
	ctx := context.Background()
	id := d.deal(t, d.clock().Add(time.Hour))
	filed, err := d.buyerNode.FileDispute(ctx, d.buyer, id, api.FileDisputeRequest{Grounds: "specification_mismatch", Severity: 4, Claim: "replace the hardware"})
	if err != nil {
		t.Fatal(err)
	}
	awaitDispute(t, d.vendorNode, id, "FILED")
	got, err := d.vendorNode.DisputeStep(ctx, d.vendor, filed.DisputeID, "reject", api.DisputeStepRequest{Reason: "it matches"})
	if err != nil || got.State != "HUMAN" {
		t.Fatalf("reject: %+v, %v", got, err)
	}
	awaitDispute(t, d.buyerNode, id, "HUMAN")
	if c := commitmentState(t, d.vendorNode, id); c.State != "DISPUTED" {
		t.Fatalf("commitment %s", c.State)
	}

	// With an arbiter of a third organisation in the terms, a rejection
	// escalates to it: ESCALATED on both nodes, waiting for its ruling.
	arbiter := protocoltest.FixtureParty("dispute-arbiter", "arbiter").Agent().String()
	id2 := d.dealWith(t, d.clock().Add(time.Hour), fmt.Sprintf(`"arbiter":%q,`, arbiter))
	f2, err := d.buyerNode.FileDispute(ctx, d.buyer, id2, api.FileDisputeRequest{Grounds: "non_delivery", Severity: 3, Claim: "refund"})
	if err != nil {
		t.Fatal(err)
	}
	got, err = d.vendorNode.DisputeStep(ctx, d.vendor, f2.DisputeID, "reject", api.DisputeStepRequest{})
	if err != nil || got.State != "ESCALATED" || got.Arbiter != arbiter {
		t.Fatalf("reject with an arbiter: %+v, %v", got, err)
	}
	awaitDispute(t, d.buyerNode, id2, "ESCALATED")
}

// TestCancelByBoth: a cancellation asked by one party changes nothing
// until the other asks too; then the commitment is CANCELLED on both
// nodes with both agents' signatures, and both ledgers verify. A
// cancellation offer from a node that is not the counterparty's is refused.
func TestCancelByBoth(t *testing.T) {
	d := newDisputePair(t)
	ctx := context.Background()
	id := d.deal(t, d.clock().Add(time.Hour))
	size := recordedSize(t, d.vendorNode)
	c, err := d.buyerNode.CancelCommitment(ctx, d.buyer, id)
	if err != nil || c.State != "ACTIVE" {
		t.Fatalf("first ask: %s, %v", c.State, err)
	}
	if s := commitmentState(t, d.vendorNode, id); s.State != "ACTIVE" || recordedSize(t, d.vendorNode) != size {
		t.Fatalf("after one ask the vendor holds %s, ledger %d → %d", s.State, size, recordedSize(t, d.vendorNode))
	}
	c, err = d.vendorNode.CancelCommitment(ctx, d.vendor, id)
	if err != nil || c.State != "CANCELLED" {
		t.Fatalf("second ask: %s, %v", c.State, err)
	}
	for _, n := range []*Node{d.buyerNode, d.vendorNode} {
		if s := commitmentState(t, n, id); s.State != "CANCELLED" || s.Obligations[0].Status != "cancelled" {
			t.Fatalf("%s: %s %+v", n.peerID, s.State, s.Obligations)
		}
		verifyLedger(t, n)
	}
	if _, err := d.buyerNode.CancelCommitment(ctx, d.buyer, id); codeOf(err) != "invalid_transition" {
		t.Fatalf("cancel again: %v", err)
	}
}

// TestAutoConfirmAndNotify: a vendor's claim the buyer neither confirms
// nor disputes within confirmWithin is confirmed by the buyer's node
// (FULFILLED on both); a breach under onBreach: notify is recorded and
// published once by the node it is owed to, and nothing is filed.
func TestAutoConfirmAndNotify(t *testing.T) {
	d := &dpair{offset: new(atomic.Int64)}
	dir := t.TempDir()
	pol := DisputePolicy{OnBreach: OnBreachNotify, ConfirmWithin: "10s"}
	a := startClocked(t, filepath.Join(dir, "buyer-org"), d.clock, func(c *Config) { c.Disputes = pol })
	b := startClocked(t, filepath.Join(dir, "vendor-org"), d.clock, func(c *Config) { c.Disputes = pol })
	t.Cleanup(func() { a.Close(); b.Close() })
	connect(t, a, b)
	d.pair = withAgents(t, a, b)
	ctx := context.Background()

	id := d.deal(t, d.clock().Add(time.Hour))
	if _, err := b.CommitmentAction(ctx, d.vendor, id, "fulfill", nil); err != nil {
		t.Fatal(err)
	}
	d.advance(11 * time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for commitmentState(t, b, id).State != "FULFILLED" {
		if time.Now().After(deadline) {
			t.Fatalf("not confirmed automatically: %s", commitmentState(t, b, id).State)
		}
		a.watchDisputes(ctx)
		time.Sleep(10 * time.Millisecond)
	}

	late := d.deal(t, d.clock().Add(time.Minute))
	d.advance(2 * time.Minute)
	for _, n := range []*Node{a, b} {
		n.watchDisputes(ctx)
		n.watchDisputes(ctx)
	}
	if ds, _ := a.Disputes(ctx, api.Principal{Admin: true}); len(ds) != 0 {
		t.Fatalf("filed under notify: %+v", ds)
	}
	if got := verifyLedger(t, a).Kinds[ledger.KindDispute]; got != 1 {
		t.Fatalf("buyer's breach records: %d, want 1", got)
	}
	if got := verifyLedger(t, b).Kinds[ledger.KindDispute]; got != 0 {
		t.Fatalf("the obligor's node recorded %d breaches", got)
	}
	if c := commitmentState(t, a, late); c.Obligations[0].Status != "breached" || c.Obligations[0].PenaltyOwed != "127.50" {
		t.Fatalf("obligation: %+v", c.Obligations[0])
	}
}

// TestHumanRuling: with no arbiter in the terms a rejected claim goes to
// the humans; one side's ruling alone changes nothing; a different ruling
// by the other side is a new offer; the same ruling by both is RULED on
// both nodes, with the commitment BREACHED by the vendor, both ledgers
// verify, and a restart keeps it.
func TestHumanRuling(t *testing.T) {
	d := newDisputePair(t)
	ctx := context.Background()
	id := d.deal(t, d.clock().Add(time.Hour))
	filed, err := d.buyerNode.FileDispute(ctx, d.buyer, id, api.FileDisputeRequest{Grounds: "non_delivery", Severity: 5, Claim: "refund"})
	if err != nil {
		t.Fatal(err)
	}
	did := filed.DisputeID
	if _, err := d.vendorNode.DisputeStep(ctx, d.vendor, did, "reject", api.DisputeStepRequest{}); err != nil {
		t.Fatal(err)
	}
	admin := api.Principal{Admin: true}
	upheld := api.RuleRequest{Outcome: "upheld", Breacher: d.vendor, Remedy: "refund", Reasoning: "nothing was delivered"}
	if _, err := d.buyerNode.RuleDispute(ctx, api.Principal{Agent: d.buyer}, did, upheld); codeOf(err) != "unauthorized" {
		t.Fatalf("an agent ruling at the human rung: %v", err)
	}
	if got, err := d.buyerNode.RuleDispute(ctx, admin, did, upheld); err != nil || got.State != "HUMAN" {
		t.Fatalf("buyer's ruling: %+v, %v", got, err)
	}
	dismissed := upheld
	dismissed.Outcome, dismissed.Breacher = "dismissed", ""
	if got, err := d.vendorNode.RuleDispute(ctx, admin, did, dismissed); err != nil || got.State != "HUMAN" {
		t.Fatalf("vendor's different ruling: %+v, %v", got, err)
	}
	// The buyer's side now holds the vendor's offer; ruling upheld again
	// is a new offer to the vendor, who agrees this time.
	if got, err := d.buyerNode.RuleDispute(ctx, admin, did, upheld); err != nil || got.State != "HUMAN" {
		t.Fatalf("buyer's second ruling: %+v, %v", got, err)
	}
	got, err := d.vendorNode.RuleDispute(ctx, admin, did, upheld)
	if err != nil || got.State != "RULED" || got.Ruling == nil {
		t.Fatalf("vendor's agreeing ruling: %+v, %v", got, err)
	}
	for _, n := range []*Node{d.buyerNode, d.vendorNode} {
		awaitDispute(t, n, id, "RULED")
		if c := commitmentState(t, n, id); c.State != "BREACHED" {
			t.Fatalf("%s: commitment %s, want BREACHED", n.peerID, c.State)
		}
		verifyLedger(t, n)
	}
	if _, err := d.buyerNode.RuleDispute(ctx, admin, did, upheld); codeOf(err) != "invalid_transition" {
		t.Fatalf("ruling after RULED: %v", err)
	}
	home := d.vendorNode.cfg.Home
	d.vendorNode.Close()
	v := startClocked(t, home, d.clock, nil)
	t.Cleanup(func() { v.Close() })
	if ds, _ := v.Disputes(ctx, admin); len(ds) != 1 || ds[0].State != "RULED" {
		t.Fatalf("after restart: %+v", ds)
	}
	if c := commitmentState(t, v, id); c.State != "BREACHED" {
		t.Fatalf("after restart: commitment %s", c.State)
	}
}
