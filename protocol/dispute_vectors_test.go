package protocol

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

type vecRecord struct {
	JSON   json.RawMessage `json:"json"`
	CBOR   string          `json:"cbor"`
	Digest string          `json:"digest"` // SHA-256 of the canonical payload without signatures: what is signed
	State  DisputeState    `json:"stateAfter,omitempty"`
}

type vecObligation struct {
	ID       string `json:"id"`
	Obligor  string `json:"obligor"`
	Deadline string `json:"deadline,omitempty"`
}

type vecPenalty struct {
	Rule     string `json:"rule"`
	Total    string `json:"total"`
	Lateness string `json:"lateness"` // a period, as terms.payWithin
	Owed     string `json:"owed"`
	Currency string `json:"currency"`
}

type vecDispute struct {
	Comment     string          `json:"comment"`
	Terms       json.RawMessage `json:"termsWithPayment"`
	TermsCBOR   string          `json:"termsWithPaymentCbor"`
	Commitment  string          `json:"commitmentCbor"` // with an arbiter of a third organisation, ACTIVE
	Obligations []vecObligation `json:"obligations"`
	Penalties   []vecPenalty    `json:"penalties"`
	DisputeID   string          `json:"disputeId"`
	Filing      vecRecord       `json:"filing"`
	Counter     vecRecord       `json:"counter"`
	Reject      vecRecord       `json:"reject"`
	Ruling      vecRecord       `json:"ruling"`
}

func buildDisputeVectors(t *testing.T) []byte {
	k := newDisputeKit(t)
	at := k.c.Created.Add(time.Hour)
	v := vecDispute{Comment: "Dispute records signed with the fixture keys of seed-deal.json plus an arbiter. The filing's " +
		"disputeId is dsp_ + hex(SHA-256(\"asp/1.0 dispute id\" 0x00 digest)[:16]); each record decodes, re-encodes " +
		"to the same bytes, verifies, and stepped in order from the filing reaches stateAfter. See docs/disputes.md."}
	terms := gpuTerms()
	terms.Provider, terms.PayWithin = k.vendor.Agent().String(), 30*24*time.Hour
	v.Terms, _ = json.Marshal(terms)
	tb, _ := terms.MarshalCBOR()
	v.TermsCBOR = hex.EncodeToString(tb)
	cb, _ := EncodeCommitment(k.c)
	v.Commitment = hex.EncodeToString(cb)
	for _, o := range k.c.Obligations() {
		v.Obligations = append(v.Obligations, vecObligation{o.ID, o.Obligor, FormatTime(o.Deadline)})
	}
	for _, p := range []struct {
		rule, total string
		late        time.Duration
	}{{"5% per day late", "2550.00", 49 * time.Hour}, {"2% per week late", "2550.00", 8 * 24 * time.Hour},
		{"100.00 USD", "2550.00", time.Second}} {
		r, err := ParsePenaltyRule(p.rule)
		if err != nil {
			t.Fatal(err)
		}
		owed, cur, err := r.Owed(p.total, "USD", p.late)
		if err != nil {
			t.Fatal(err)
		}
		v.Penalties = append(v.Penalties, vecPenalty{p.rule, p.total, FormatPeriod(p.late), owed, cur})
	}
	rec := func(j any, b []byte, d [32]byte, st DisputeState) vecRecord {
		js, _ := json.Marshal(j)
		return vecRecord{js, hex.EncodeToString(b), hex.EncodeToString(d[:]), st}
	}
	d := k.filing(t, "buyer", at)
	kc, err := OpenDispute(k.c, d, nil, at, k.rules)
	if err != nil {
		t.Fatal(err)
	}
	v.DisputeID = kc.ID
	db, _ := EncodeDispute(d)
	dd, _ := d.Digest()
	v.Filing = rec(d, db, dd, kc.State)
	for i, kind := range []StepKind{StepCounter, StepReject} {
		by := []string{"vendor", "buyer"}[i]
		s := k.step(t, kc, kind, by, at.Add(time.Duration(i+1)*time.Minute))
		if kc, err = kc.Step(s, s.Time, k.rules); err != nil {
			t.Fatal(err)
		}
		sb, _ := EncodeDisputeStep(s)
		sd, _ := s.Digest()
		if kind == StepCounter {
			v.Counter = rec(s, sb, sd, kc.State)
		} else {
			v.Reject = rec(s, sb, sd, kc.State)
		}
	}
	r := k.ruling(t, kc, "arbiter", at.Add(time.Hour), "arbiter")
	if kc, err = kc.Rule(r, r.Time, k.rules); err != nil {
		t.Fatal(err)
	}
	rb, _ := EncodeRuling(r)
	rd, _ := r.Digest()
	v.Ruling = rec(r, rb, rd, kc.State)
	out, _ := json.MarshalIndent(v, "", "  ")
	return append(out, '\n')
}

func TestDisputeVectors(t *testing.T) {
	path := filepath.Join("testdata", "vectors", "dispute.json")
	want := buildDisputeVectors(t)
	if *updateVectors {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestDisputeVectors -update-vectors)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: the code no longer produces the published vectors", path)
	}
}

// TestDisputeVectorsIndependently checks dispute.json from the file alone.
func TestDisputeVectorsIndependently(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "vectors", "dispute.json"))
	if err != nil {
		t.Skip("no vectors yet")
	}
	var v vecDispute
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	unhex := func(s string) []byte { b, _ := hex.DecodeString(s); return b }
	var terms Terms
	if err := terms.UnmarshalCBOR(unhex(v.TermsCBOR)); err != nil || terms.PayWithin != 30*24*time.Hour {
		t.Fatalf("terms: %v", err)
	}
	c, err := DecodeCommitment(unhex(v.Commitment))
	if err != nil {
		t.Fatal(err)
	}
	d, err := DecodeDispute(unhex(v.Filing.CBOR))
	if err != nil || d.ID() != v.DisputeID {
		t.Fatalf("filing: %v", err)
	}
	var fromJSON Dispute
	if err := json.Unmarshal(v.Filing.JSON, &fromJSON); err != nil || fromJSON.ID() != v.DisputeID {
		t.Fatalf("filing JSON: %v", err)
	}
	rules := DisputeRules{Bound: time.Minute, VerifyProof: func([]byte, uint64, [][]byte, string) error { return nil }}
	kc, err := OpenDispute(c, d, nil, d.Time, rules)
	if err != nil || kc.State != v.Filing.State {
		t.Fatalf("open: %v", err)
	}
	for _, r := range []vecRecord{v.Counter, v.Reject} {
		s, err := DecodeDisputeStep(unhex(r.CBOR))
		if err != nil {
			t.Fatal(err)
		}
		if dg, _ := s.Digest(); hex.EncodeToString(dg[:]) != r.Digest {
			t.Fatal("step digest")
		}
		if kc, err = kc.Step(s, s.Time, rules); err != nil || kc.State != r.State {
			t.Fatalf("step: %v", err)
		}
	}
	ru, err := DecodeRuling(unhex(v.Ruling.CBOR))
	if err != nil {
		t.Fatal(err)
	}
	if kc, err = kc.Rule(ru, ru.Time, rules); err != nil || kc.State != v.Ruling.State || ru.Arbiter != c.Terms.Arbiter {
		t.Fatalf("ruling: %v", err)
	}
	// The same from the records alone, and refused with a tampered step.
	var steps []*DisputeStep
	for _, r := range []vecRecord{v.Counter, v.Reject} {
		s, _ := DecodeDisputeStep(unhex(r.CBOR))
		steps = append(steps, s)
	}
	again, err := RebuildDispute(c, d, nil, steps, ru, rules)
	if err != nil || again.State != DisputeRuled || again.Ruling.Breacher != ru.Breacher || again.EscalatedAt != kc.EscalatedAt {
		t.Fatalf("rebuild: %v", err)
	}
	steps[0].Remedy = "nothing"
	if _, err := RebuildDispute(c, d, nil, steps, ru, rules); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("rebuild with a tampered step: %v", err)
	}
}
