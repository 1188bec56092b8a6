package protocol

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// disputeKit is a commitment with an arbiter of a third organisation,
// ACTIVE, and helpers to sign dispute records at times after it.
type disputeKit struct {
	*dealKit
	c     *Commitment
	rules DisputeRules
}

func newDisputeKit(t testing.TB) *disputeKit {
	t.Helper()
	k := newDealKit(t, true)
	return &disputeKit{dealKit: k, c: k.receipts(t),
		rules: DisputeRules{Windows: DisputeWindows{RespondWithin: time.Hour, NegotiateFor: 3 * time.Hour, RuleWithin: 2 * time.Hour},
			Bound: time.Minute, VerifyProof: func(entry []byte, index uint64, proof [][]byte, cp string) error {
				if index != 7 || cp != "example.org/log\n8\n" || len(proof) != 1 {
					return errors.New("proof does not verify")
				}
				return nil
			}}}
}

func doc(content string) EvidenceItem {
	h := sha256.Sum256([]byte(content))
	return EvidenceItem{Kind: EvidenceDocument, Hash: h[:], Content: []byte(content), MediaType: "text/plain"}
}

func (k *disputeKit) filing(t testing.TB, by string, at time.Time) *Dispute {
	t.Helper()
	against := "vendor"
	if by == "vendor" {
		against = "buyer"
	}
	d := &Dispute{CommitmentID: k.c.ID, Obligation: "delivery", FiledBy: k.party(by).Agent().String(),
		Against: k.party(against).Agent().String(), Grounds: GroundsNonDelivery, Severity: 4,
		Claim: "refund 2550.00 USD", Statement: "nothing delivered by deliverBy", Time: at,
		Evidence: []EvidenceItem{doc("usage report: 0 hours"),
			{Kind: EvidenceEntry, Entry: []byte("entry"), Index: 7, Proof: [][]byte{make([]byte, 32)}, Checkpoint: "example.org/log\n8\n"}}}
	if err := d.Sign(k.party(by).AgentKey, k.cert(by)); err != nil {
		t.Fatal(err)
	}
	return d
}

func (k *disputeKit) step(t testing.TB, kc *DisputeCase, kind StepKind, by string, at time.Time) *DisputeStep {
	t.Helper()
	s := &DisputeStep{DisputeID: kc.ID, CommitmentID: kc.CommitmentID, Kind: kind, By: k.party(by).Agent().String(), Time: at}
	switch kind {
	case StepCounter:
		s.Remedy = "credit of 500 GPU hours"
	case StepAccept:
		s.Reference = bytes.Clone(kc.Table[:])
	}
	if err := s.Sign(k.party(by).AgentKey, k.cert(by)); err != nil {
		t.Fatal(err)
	}
	return s
}

func (k *disputeKit) ruling(t testing.TB, kc *DisputeCase, by string, at time.Time, signers ...string) *Ruling {
	t.Helper()
	r := &Ruling{DisputeID: kc.ID, CommitmentID: kc.CommitmentID, Outcome: RulingUpheld,
		Breacher: k.vendor.Agent().String(), Remedy: "refund 2550.00 USD", Reasoning: "no delivery record", Time: at}
	if by != "" {
		r.Arbiter = k.party(by).Agent().String()
	}
	for _, s := range signers {
		if err := r.Sign(k.party(s).AgentKey, k.cert(s)); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func TestDisputeRecordsRoundTrip(t *testing.T) {
	k := newDisputeKit(t)
	at := k.c.Created.Add(time.Hour)
	d := k.filing(t, "buyer", at)
	if err := d.Verify(); err != nil {
		t.Fatal(err)
	}
	if id := d.ID(); len(id) != 36 || id[:4] != "dsp_" {
		t.Fatalf("id %q", id)
	}
	b, err := EncodeDispute(d)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeDispute(b)
	if err != nil || back.ID() != d.ID() || back.Verify() != nil {
		t.Fatalf("CBOR round trip: %v", err)
	}
	j, _ := json.Marshal(d)
	var fromJSON Dispute
	if err := json.Unmarshal(j, &fromJSON); err != nil {
		t.Fatal(err)
	}
	if b2, _ := EncodeDispute(&fromJSON); !bytes.Equal(b, b2) {
		t.Fatal("JSON and CBOR forms differ")
	}
	kc, err := OpenDispute(k.c, d, nil, at, k.rules)
	if err != nil {
		t.Fatal(err)
	}
	s := k.step(t, kc, StepCounter, "vendor", at.Add(time.Minute))
	sb, _ := EncodeDisputeStep(s)
	if s2, err := DecodeDisputeStep(sb); err != nil || s2.Verify() != nil {
		t.Fatalf("step round trip: %v", err)
	}
	r := k.ruling(t, kc, "arbiter", at.Add(2*time.Hour), "arbiter")
	rb, _ := EncodeRuling(r)
	if r2, err := DecodeRuling(rb); err != nil || r2.Verify() != nil || r2.CommitmentOutcome() != CommitmentBreached {
		t.Fatalf("ruling round trip: %v", err)
	}
	// Tampering after signing breaks the signature; the id changes.
	d.Severity = 1
	if err := d.Verify(); !errors.Is(err, ErrBadSignature) || d.ID() == back.ID() {
		t.Fatalf("tampered filing: %v", err)
	}
	// Malformed forms.
	for name, f := range map[string]func(*Dispute){
		"grounds":     func(d *Dispute) { d.Grounds = "vibes" },
		"severity 0":  func(d *Dispute) { d.Severity = 0 },
		"severity 6":  func(d *Dispute) { d.Severity = 6 },
		"no claim":    func(d *Dispute) { d.Claim = "" },
		"self":        func(d *Dispute) { d.Against = d.FiledBy },
		"obligation":  func(d *Dispute) { d.Obligation = "Delivery" },
		"doc hash":    func(d *Dispute) { d.Evidence[0].Content = []byte("other") },
		"entry mixed": func(d *Dispute) { d.Evidence[1].Content = []byte("x") },
		"short proof": func(d *Dispute) { d.Evidence[1].Proof = [][]byte{{1}} },
	} {
		x := *back
		x.Evidence = []EvidenceItem{back.Evidence[0], back.Evidence[1]}
		f(&x)
		if _, err := EncodeDispute(&x); err == nil {
			if b, _ := EncodeDispute(&x); b != nil {
				if _, err := DecodeDispute(b); err == nil {
					t.Errorf("%s: decodes", name)
				}
			}
		}
	}
}

func TestOpenDisputeRefusals(t *testing.T) {
	k := newDisputeKit(t)
	at := k.c.Created.Add(time.Hour)
	d := k.filing(t, "buyer", at)
	// A non-party files (signed by the arbiter's agent, as filer).
	stranger := &Dispute{CommitmentID: k.c.ID, FiledBy: k.judge.Agent().String(), Against: k.vendor.Agent().String(),
		Grounds: GroundsOther, Severity: 1, Claim: "x", Time: at}
	if err := stranger.Sign(k.judge.AgentKey, k.judgeCert); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDispute(k.c, stranger, nil, at, k.rules); !errors.Is(err, ErrNotParty) {
		t.Fatalf("non-party: %v", err)
	}
	if _, err := OpenDispute(k.c, d, nil, at.Add(time.Hour), k.rules); !errors.Is(err, ErrNotFresh) {
		t.Fatalf("stale filing: %v", err)
	}
	if _, err := OpenDispute(k.c, d, []*Dispute{d}, at, k.rules); !errors.Is(err, ErrDuplicateDispute) {
		t.Fatalf("second filing: %v", err)
	}
	// Also when the other party filed first on the same obligation and ground.
	if _, err := OpenDispute(k.c, d, []*Dispute{k.filing(t, "vendor", at)}, at, k.rules); !errors.Is(err, ErrDuplicateDispute) {
		t.Fatalf("second filing, other party: %v", err)
	}
	other := k.filing(t, "buyer", at)
	other.Grounds, other.Signatures = GroundsTimeoutBreach, nil
	if err := other.Sign(k.buyer.AgentKey, k.d.BuyerCert); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDispute(k.c, other, []*Dispute{d}, at, k.rules); err != nil {
		t.Fatalf("another ground: %v", err)
	}
	bad := k.rules
	bad.VerifyProof = func([]byte, uint64, [][]byte, string) error { return errors.New("root mismatch") }
	if _, err := OpenDispute(k.c, d, nil, at, bad); !errors.Is(err, ErrBadEvidence) || ErrorCode(err) != CodeInvalidSignature {
		t.Fatalf("bad proof: %v", err)
	}
	bad.VerifyProof = nil
	if _, err := OpenDispute(k.c, d, nil, at, bad); !errors.Is(err, ErrBadEvidence) {
		t.Fatalf("no verifier: %v", err)
	}
	c2 := *k.c
	c2.ID = "cmt_other"
	if _, err := OpenDispute(&c2, d, nil, at, k.rules); !errors.Is(err, ErrWrongDispute) {
		t.Fatalf("other commitment: %v", err)
	}
}

func TestDisputeLadder(t *testing.T) {
	k := newDisputeKit(t)
	at := k.c.Created.Add(time.Hour)
	min := func(n int) time.Time { return at.Add(time.Duration(n) * time.Minute) }
	open := func(t *testing.T) *DisputeCase {
		kc, err := OpenDispute(k.c, k.filing(t, "buyer", at), nil, at, k.rules)
		if err != nil {
			t.Fatal(err)
		}
		return kc
	}
	t.Run("accept-claim", func(t *testing.T) {
		kc := open(t)
		if _, err := kc.Step(k.step(t, kc, StepAccept, "buyer", min(1)), min(1), k.rules); !errors.Is(err, ErrOwnOffer) {
			t.Fatalf("filer accepting its own claim: %v", err)
		}
		n, err := kc.Step(k.step(t, kc, StepAccept, "vendor", min(1)), min(1), k.rules)
		if err != nil || n.State != DisputeResolved || n.Resolution != "refund 2550.00 USD" || kc.State != DisputeFiled {
			t.Fatalf("%v %s", err, n.State)
		}
		if _, err := n.Step(k.step(t, n, StepCounter, "vendor", min(2)), min(2), k.rules); !errors.Is(err, ErrDisputeClosed) {
			t.Fatalf("step after close: %v", err)
		}
		if _, err := n.Rule(k.ruling(t, n, "arbiter", min(2), "arbiter"), min(2), k.rules); !errors.Is(err, ErrDisputeClosed) {
			t.Fatalf("ruling after close: %v", err)
		}
	})
	t.Run("counter-accept", func(t *testing.T) {
		kc := open(t)
		n, err := kc.Step(k.step(t, kc, StepCounter, "vendor", min(1)), min(1), k.rules)
		if err != nil || n.State != DisputeRemedyOffered {
			t.Fatal(err)
		}
		stale := k.step(t, kc, StepAccept, "vendor", min(2)) // names the filing, no longer on the table
		if _, err := n.Step(stale, min(2), k.rules); !errors.Is(err, ErrOwnOffer) {
			t.Fatalf("vendor accepting after its own counter: %v", err)
		}
		stale = k.step(t, kc, StepAccept, "buyer", min(2))
		if _, err := n.Step(stale, min(2), k.rules); !errors.Is(err, ErrBadReference) {
			t.Fatalf("accept of a remedy off the table: %v", err)
		}
		n, err = n.Step(k.step(t, n, StepAccept, "buyer", min(2)), min(2), k.rules)
		if err != nil || n.State != DisputeResolved || n.Resolution != "credit of 500 GPU hours" {
			t.Fatal(err)
		}
	})
	t.Run("silence-arbiter-rules", func(t *testing.T) {
		kc := open(t)
		if _, err := kc.Rule(k.ruling(t, kc, "arbiter", min(1), "arbiter"), min(1), k.rules); !errors.Is(err, ErrDisputeStep) {
			t.Fatalf("ruling before escalation: %v", err)
		}
		if d := kc.Deadline(k.rules.Windows); !d.Equal(at.Add(time.Hour)) {
			t.Fatalf("deadline %s", d)
		}
		n, changed := kc.Tick(min(61), k.rules.Windows)
		if !changed || n.State != DisputeEscalated || !n.EscalatedAt.Equal(at.Add(time.Hour)) {
			t.Fatalf("after respondWithin: %s", n.State)
		}
		if _, err := n.Rule(k.ruling(t, n, "buyer", min(62), "buyer"), min(62), k.rules); !errors.Is(err, ErrNotArbiter) {
			t.Fatalf("a party ruling: %v", err)
		}
		r := k.ruling(t, n, "arbiter", min(62), "arbiter")
		r.DisputeID = "dsp_00000000000000000000000000000000"
		if _, err := n.Rule(r, min(62), k.rules); !errors.Is(err, ErrWrongDispute) {
			t.Fatalf("ruling for another dispute: %v", err)
		}
		if _, err := n.Step(k.step(t, n, StepReject, "vendor", min(62)), min(62), k.rules); !errors.Is(err, ErrDisputeStep) {
			t.Fatalf("reject once escalated: %v", err)
		}
		ruled, err := n.Rule(k.ruling(t, n, "arbiter", min(62), "arbiter"), min(62), k.rules)
		if err != nil || ruled.State != DisputeRuled || ruled.Ruling.CommitmentOutcome() != CommitmentBreached {
			t.Fatal(err)
		}
		if _, err := ruled.Rule(k.ruling(t, n, "arbiter", min(63), "arbiter"), min(63), k.rules); !errors.Is(err, ErrDisputeClosed) {
			t.Fatalf("second ruling: %v", err)
		}
		// The ruling is judged at its own time: once ruleWithin has passed
		// (two hours after escalation) the arbiter's ruling is too late.
		late := at.Add(3*time.Hour + time.Minute)
		if _, err := n.Rule(k.ruling(t, n, "arbiter", late, "arbiter"), late, k.rules); !errors.Is(err, ErrDisputeStep) {
			t.Fatalf("late ruling: %v", err)
		}
	})
	t.Run("reject-no-arbiter-human", func(t *testing.T) {
		c := *k.c
		c.Terms.Arbiter = ""
		kc, err := OpenDispute(&c, k.filing(t, "buyer", at), nil, at, k.rules)
		if err != nil {
			t.Fatal(err)
		}
		n, err := kc.Step(k.step(t, kc, StepReject, "vendor", min(1)), min(1), k.rules)
		if err != nil || n.State != DisputeHuman {
			t.Fatalf("%v %s", err, n.State)
		}
		if _, err := n.Rule(k.ruling(t, n, "", min(2), "buyer"), min(2), k.rules); !errors.Is(err, ErrMissingSignature) {
			t.Fatalf("human ruling by one party: %v", err)
		}
		r, err := n.Rule(k.ruling(t, n, "", min(2), "buyer", "vendor"), min(2), k.rules)
		if err != nil || r.State != DisputeRuled {
			t.Fatal(err)
		}
	})
	t.Run("arbiter-silent-human", func(t *testing.T) {
		kc := open(t)
		n, err := kc.Step(k.step(t, kc, StepCounter, "vendor", min(1)), min(1), k.rules)
		if err != nil {
			t.Fatal(err)
		}
		// negotiateFor (3h) then ruleWithin (2h): one Tick far ahead takes both rungs.
		h, _ := n.Tick(at.Add(6*time.Hour), k.rules.Windows)
		if h.State != DisputeHuman || !h.EscalatedAt.Equal(at.Add(3*time.Hour)) || !h.Updated.Equal(at.Add(5*time.Hour)) {
			t.Fatalf("%s escalated %s updated %s", h.State, h.EscalatedAt, h.Updated)
		}
		// Parties may still settle at the human rung.
		s, err := h.Step(k.step(t, h, StepAccept, "buyer", at.Add(6*time.Hour)), at.Add(6*time.Hour), k.rules)
		if err != nil || s.State != DisputeResolved {
			t.Fatal(err)
		}
	})
	t.Run("stranger-steps", func(t *testing.T) {
		kc := open(t)
		s := &DisputeStep{DisputeID: kc.ID, CommitmentID: kc.CommitmentID, Kind: StepEscalate, By: k.judge.Agent().String(), Time: min(1)}
		if err := s.Sign(k.judge.AgentKey, k.judgeCert); err != nil {
			t.Fatal(err)
		}
		if _, err := kc.Step(s, min(1), k.rules); !errors.Is(err, ErrNotParty) {
			t.Fatalf("stranger: %v", err)
		}
		if _, err := kc.Step(k.step(t, kc, StepEscalate, "buyer", min(1)), min(30), k.rules); !errors.Is(err, ErrNotFresh) {
			t.Fatalf("stale step: %v", err)
		}
	})
}

// BenchmarkDisputeLadder: the pure cost of one dispute from filing to
// ruling (open, reject, rule), records signed beforehand.
func BenchmarkDisputeLadder(b *testing.B) {
	k := newDisputeKit(b)
	at := k.c.Created.Add(time.Hour)
	d := k.filing(b, "buyer", at)
	kc, err := OpenDispute(k.c, d, nil, at, k.rules)
	if err != nil {
		b.Fatal(err)
	}
	rej := k.step(b, kc, StepReject, "vendor", at.Add(time.Minute))
	ru := k.ruling(b, kc, "arbiter", at.Add(2*time.Minute), "arbiter")
	b.ResetTimer()
	for b.Loop() {
		if _, err := RebuildDispute(k.c, d, nil, []*DisputeStep{rej}, ru, k.rules); err != nil {
			b.Fatal(err)
		}
	}
}
