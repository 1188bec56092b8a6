package attest

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/aspnode/asp/protocol"
	"github.com/fxamacker/cbor/v2"
)

func TestRoundTripAndVerify(t *testing.T) {
	f := newFixture(t, "roundtrip")
	now := t0.Add(time.Hour)
	for _, o := range Outcomes {
		a := f.attest(t, o, now)
		b := mustEncode(t, a)
		d, err := Decode(b)
		if err != nil {
			t.Fatalf("%s: decode: %v", o, err)
		}
		if err := d.Verify(now); err != nil {
			t.Fatalf("%s: verify: %v", o, err)
		}
		if !bytes.Equal(mustEncode(t, d), b) {
			t.Fatalf("%s: re-encoding differs", o)
		}
		if d.Attester != f.buyer.Agent().String() || d.Subject != f.vendor.Agent().String() || d.CommitmentID != f.c.ID {
			t.Fatalf("%s: fields %+v", o, d)
		}
	}
	// The vendor attests about the buyer too.
	a, err := FromCommitment(f.c, Fulfilled, now, f.vendor.AgentKey, f.vendorCert)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Verify(now); err != nil {
		t.Fatal(err)
	}
	if a.Subject != f.buyer.Agent().String() {
		t.Fatalf("subject %s", a.Subject)
	}
	// The buyer's organisation has since certified a new key for it: an
	// attestation under the new certificate verifies as well.
	newKey := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	cert, err := protocol.IssueCertificate(f.buyer.OrgKey, f.buyer.Agent(), newKey.Public().(ed25519.PublicKey), nil, now.AddDate(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if a, err = FromCommitment(f.c, Breached, now, newKey, cert); err != nil {
		t.Fatal(err)
	}
	if err := a.Verify(now); err != nil {
		t.Fatalf("under a reissued certificate: %v", err)
	}
}

func TestVerifyRefusals(t *testing.T) {
	f := newFixture(t, "refusals")
	now := t0.Add(time.Hour)
	offer, acc := f.c.Offer, f.c.Acceptance

	// tamperOffer changes a term of the offer; with resign the offerer
	// signs the changed offer again.
	tamperOffer := func(resignIt bool) []byte {
		b, err := protocol.EncodeEnvelope(offer)
		if err != nil {
			t.Fatal(err)
		}
		e, err := protocol.DecodeEnvelope(b)
		if err != nil {
			t.Fatal(err)
		}
		pb := e.Body.(*protocol.ProposeBody)
		terms := *pb.Terms
		terms.UnitPrice = "0.01"
		pb.Terms = &terms
		if resignIt {
			if err := e.Sign(f.buyer.AgentKey); err != nil {
				t.Fatal(err)
			}
		}
		out, err := protocol.EncodeEnvelope(e)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if _, ok := offer.Body.(*protocol.ProposeBody); !ok || offer.Sender != f.buyer.Agent().String() {
		t.Fatalf("fixture: the accepted offer is a %s by %s", offer.Performative, offer.Sender)
	}

	forgedCert := func() *protocol.Certificate {
		// The outsider's organisation certifies a key under the buyer's id.
		c := *f.buyerCert
		c.PublicKey = f.outsider.AgentKey.Public().(ed25519.PublicKey)
		return &c
	}

	cases := []struct {
		name   string
		mutate func(a *Attestation) // after signing unless it re-signs
		want   error
	}{
		{"outcome changed after signing", func(a *Attestation) { a.Outcome = Breached }, ErrForged},
		{"subject changed after signing", func(a *Attestation) { a.Subject = f.outsider.Agent().String() }, ErrForged},
		{"time changed after signing", func(a *Attestation) { a.Time = a.Time.Add(time.Millisecond) }, ErrForged},
		{"signature truncated", func(a *Attestation) { a.Signature = a.Signature[:10] }, ErrMalformed},
		{"no certificate", func(a *Attestation) { a.Certificate = nil }, ErrMalformed},
		{"bad outcome", func(a *Attestation) { a.Outcome = "great" }, ErrMalformed},
		{"certificate of another agent", func(a *Attestation) { a.Certificate = f.vendorCert }, ErrForged},
		{"certificate key not signed by the org", func(a *Attestation) {
			resign(t, a, f.outsider.AgentKey, forgedCert())
		}, ErrForged},
		{"attester not a party", func(a *Attestation) {
			resign(t, a, f.outsider.AgentKey, f.outsiderCert)
		}, ErrNotParty},
		{"subject not the counterparty", func(a *Attestation) {
			a.Subject = f.outsider.Agent().String()
			resign(t, a, f.buyer.AgentKey, f.buyerCert)
		}, ErrNotParty},
		{"attester is the subject", func(a *Attestation) {
			a.Subject = a.Attester
			resign(t, a, f.buyer.AgentKey, f.buyerCert)
		}, ErrNotParty},
		{"offer term tampered", func(a *Attestation) {
			a.Offer = tamperOffer(false)
			resign(t, a, f.buyer.AgentKey, f.buyerCert)
		}, ErrForged},
		{"offer term tampered and signed again by the offerer", func(a *Attestation) {
			a.Offer = tamperOffer(true)
			resign(t, a, f.buyer.AgentKey, f.buyerCert)
		}, ErrMismatch},
		{"other commitment id", func(a *Attestation) {
			a.CommitmentID = protocol.CommitmentID([32]byte{1}, [32]byte{2})
			resign(t, a, f.buyer.AgentKey, f.buyerCert)
		}, ErrMismatch},
		{"offer and acceptance swapped", func(a *Attestation) {
			a.Offer, a.Acceptance = a.Acceptance, a.Offer
			resign(t, a, f.buyer.AgentKey, f.buyerCert)
		}, ErrMismatch},
		{"an earlier offer instead of the accepted one", func(a *Attestation) {
			b, err := protocol.EncodeEnvelope(f.deal.Transcript[2])
			if err != nil {
				t.Fatal(err)
			}
			a.Offer = b
			resign(t, a, f.buyer.AgentKey, f.buyerCert)
		}, ErrMismatch},
		{"offer is garbage", func(a *Attestation) {
			a.Offer = []byte{0xa0}
			resign(t, a, f.buyer.AgentKey, f.buyerCert)
		}, ErrMalformed},
		{"attested before the commitment", func(a *Attestation) {
			a.Time = acc.Timestamp.Add(-time.Hour)
			resign(t, a, f.buyer.AgentKey, f.buyerCert)
		}, ErrMismatch},
		{"in the future", func(a *Attestation) {
			a.Time = now.Add(time.Hour)
			resign(t, a, f.buyer.AgentKey, f.buyerCert)
		}, ErrStale},
		{"after the attester's certificate expired", func(a *Attestation) {
			a.Time = f.buyerCert.NotAfter.Add(time.Hour)
			resign(t, a, f.buyer.AgentKey, f.buyerCert)
		}, nil}, // checked below with a later now
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := f.attest(t, Fulfilled, now)
			tc.mutate(a)
			verifyAt := now
			want := tc.want
			if want == nil {
				verifyAt, want = a.Time, ErrForged
			}
			err := a.Verify(verifyAt)
			if !errors.Is(err, want) {
				t.Fatalf("Verify = %v, want %v", err, want)
			}
			if Provable(err) != (want != ErrStale) {
				t.Fatalf("Provable(%v) = %v", err, Provable(err))
			}
			// What survives encoding fails the same way after decoding.
			if b, err := a.Encode(); err == nil {
				if d, err := Decode(b); err == nil {
					if err := d.Verify(verifyAt); !errors.Is(err, want) {
						t.Fatalf("after decoding: Verify = %v, want %v", err, want)
					}
				}
			}
		})
	}
}

func TestDecodeRefusals(t *testing.T) {
	f := newFixture(t, "decode")
	good := mustEncode(t, f.attest(t, Fulfilled, t0.Add(time.Hour)))

	var m map[string]any
	if err := cbor.Unmarshal(good, &m); err != nil {
		t.Fatal(err)
	}
	reencode := func(change func(map[string]any), opts cbor.EncOptions) []byte {
		c := make(map[string]any, len(m))
		for k, v := range m {
			c[k] = v
		}
		change(c)
		em, err := opts.EncMode()
		if err != nil {
			t.Fatal(err)
		}
		b, err := em.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	canon := cbor.CoreDetEncOptions()
	cases := map[string][]byte{
		"empty":           nil,
		"not a map":       {0x01},
		"truncated":       good[:len(good)-1],
		"trailing byte":   append(append([]byte{}, good...), 0x00),
		"unknown field":   reencode(func(c map[string]any) { c["extra"] = "x" }, canon),
		"missing field":   reencode(func(c map[string]any) { delete(c, "outcome") }, canon),
		"other version":   reencode(func(c map[string]any) { c["version"] = "asp/2.0" }, canon),
		"bad time":        reencode(func(c map[string]any) { c["time"] = "2027-03-01T10:00:00Z" }, canon),
		"time as integer": reencode(func(c map[string]any) { c["time"] = 1 }, canon),
		"non-canonical":   reencode(func(map[string]any) {}, cbor.EncOptions{Sort: cbor.SortNone}),
		"too large":       reencode(func(c map[string]any) { c["offer"] = make([]byte, MaxSize) }, canon),
	}
	for name, b := range cases {
		if _, err := Decode(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Decode = %v, want ErrMalformed", name, err)
		}
	}
	// A missing field decodes to its zero value; Verify refuses it.
	if a, err := Decode(reencode(func(c map[string]any) { delete(c, "signature") }, canon)); err != nil {
		t.Errorf("unsigned: Decode = %v", err)
	} else if err := a.Verify(t0.Add(time.Hour)); !errors.Is(err, ErrMalformed) {
		t.Errorf("unsigned: Verify = %v, want ErrMalformed", err)
	}
}

func TestFromCommitmentRefusesOutsider(t *testing.T) {
	f := newFixture(t, "outsider")
	if _, err := FromCommitment(f.c, Fulfilled, t0.Add(time.Hour), f.outsider.AgentKey, f.outsiderCert); !errors.Is(err, ErrNotParty) {
		t.Fatalf("FromCommitment by an outsider = %v, want ErrNotParty", err)
	}
	if _, err := FromCommitment(f.c, Fulfilled, t0.Add(time.Hour), f.vendor.AgentKey, f.buyerCert); !errors.Is(err, ErrMalformed) {
		t.Fatalf("FromCommitment with another agent's key = %v, want ErrMalformed", err)
	}
}

// BenchmarkDecodeVerify is the validator's work per message: decode and
// verify an attestation (Ed25519 verifications of the attestation, of the
// two envelopes and their certificates, and of the two receipts).
func BenchmarkDecodeVerify(b *testing.B) {
	f := newFixture(b, "bench verify")
	now := t0.Add(time.Hour)
	enc := mustEncode(b, f.attest(b, Fulfilled, now))
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		a, err := Decode(enc)
		if err != nil {
			b.Fatal(err)
		}
		if err := a.Verify(now); err != nil {
			b.Fatal(err)
		}
	}
}
