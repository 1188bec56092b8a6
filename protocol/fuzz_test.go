package protocol

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
)

func fuzzSeedEnvelopes(f *testing.F) [][]byte {
	d, err := SeedDeal(FixtureParty("buyer", "buyer"), FixtureParty("vendor", "vendor"), t0)
	if err != nil {
		f.Fatal(err)
	}
	var out [][]byte
	for _, e := range d.Transcript {
		b, err := EncodeEnvelope(e)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func FuzzDecodeEnvelope(f *testing.F) {
	for _, b := range fuzzSeedEnvelopes(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := DecodeEnvelope(data)
		if err != nil {
			if ErrorCode(err) == CodeInternal {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		again, err := EncodeEnvelope(e)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, data) {
			t.Fatal("decoded envelope re-encodes differently")
		}
		j, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var back Envelope
		if err := json.Unmarshal(j, &back); err != nil {
			t.Fatalf("JSON of a decoded envelope does not decode: %v\n%s", err, j)
		}
		if b2, _ := EncodeEnvelope(&back); !bytes.Equal(b2, data) {
			t.Fatal("JSON round trip changes the bytes")
		}
		_ = e.Verify()
	})
}

func FuzzEnvelopeJSON(f *testing.F) {
	d, _ := SeedDeal(FixtureParty("buyer", "buyer"), FixtureParty("vendor", "vendor"), t0)
	for _, e := range d.Transcript {
		j, _ := json.Marshal(e)
		f.Add(j)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var e Envelope
		if err := json.Unmarshal(data, &e); err != nil {
			return
		}
		b, err := EncodeEnvelope(&e)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeEnvelope(b)
		if err != nil {
			t.Fatalf("CBOR of a JSON-decoded envelope does not decode: %v", err)
		}
		if back.Hash() != e.Hash() {
			t.Fatal("hash differs")
		}
	})
}

func FuzzDecodeBodyJSON(f *testing.F) {
	f.Add(uint8(1), []byte(`{"terms":{"unitPrice":"2.80"}}`))
	f.Add(uint8(0), []byte(`{"type":"offer","terms":{"resource":"gpu-hours","quantity":"1000","unit":"hour","unitPrice":"2.40","currency":"USD","deliverBy":"2027-03-15T00:00:00.000Z","attributes":{"a":"b"}},"validUntil":"2027-03-01T00:00:00.000Z"}`))
	f.Add(uint8(8), []byte(`{"terms":{"unitPrice":"1"},"obligations":[{"party":"agent://x/y","action":"deliver"}],"escrow":{"amount":"5","currency":"USD"}}`))
	f.Add(uint8(2), []byte(`{"referenceId":"x","referenceHash":"AAAA"}`))
	f.Add(uint8(1), []byte(`{"terms":{"unitPrice":2.8}}`))
	f.Fuzz(func(t *testing.T, p uint8, data []byte) {
		perf := Performatives[int(p)%len(Performatives)]
		b, err := DecodeBodyJSON(perf, data)
		if err != nil {
			if ErrorCode(err) != CodeBadRequest {
				t.Fatalf("code %s for %v", ErrorCode(err), err)
			}
			return
		}
		if b.Performative() != perf {
			t.Fatal("wrong body type")
		}
		c1, err := EncodeBody(b)
		if err != nil {
			t.Fatal(err)
		}
		j, err := MarshalBodyJSON(b)
		if err != nil {
			t.Fatal(err)
		}
		b2, err := DecodeBodyJSON(perf, j)
		if err != nil {
			t.Fatalf("re-decoding own JSON: %v\n%s", err, j)
		}
		c2, _ := EncodeBody(b2)
		if !bytes.Equal(c1, c2) {
			t.Fatal("JSON round trip changes the canonical body")
		}
		_ = b.Validate()
	})
}

// FuzzStep drives a session with a byte program: each 5 bytes choose the
// sender, the performative, the reference, the time step and a mutation.
// Invariants: no panic; a refused envelope leaves the session unchanged;
// an accepted one extends the chain; the final session replays exactly.
func FuzzStep(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 1, 2, 0, 1, 0, 0, 0, 0, 1, 0, 1, 1, 0, 1, 0, 0, 0, 0, 1, 0, 1, 2, 0, 1, 0})
	f.Add([]byte{0, 0, 0, 1, 0, 1, 2, 0, 1, 0, 0, 8, 0, 1, 0, 1, 2, 0, 1, 0, 1, 10, 0, 2, 0, 0, 12, 0, 1, 0})
	f.Add([]byte{0, 0, 0, 1, 0, 1, 2, 0, 200, 0})
	f.Fuzz(func(t *testing.T, prog []byte) {
		if len(prog) > 400 {
			prog = prog[:400]
		}
		h := newHarness(t)
		h.s = NewSession(Config{InviteTimeout: 10 * time.Second}, "fuzz", h.agent("buyer"), h.agent("vendor"), t0)
		names := []string{"buyer", "vendor", "mallory"}
		now := t0
		var lastOffer, lastEnv string
		for i := 0; i+5 <= len(prog); i += 5 {
			op := prog[i : i+5]
			who := names[int(op[0])%3]
			perf := Performatives[int(op[1])%len(Performatives)]
			now = now.Add(time.Duration(op[3]) * 250 * time.Millisecond)
			args := map[string]string{"delegate": "arbiter"}
			switch op[2] % 4 {
			case 1:
				args["ref"] = lastOffer
			case 2:
				args["ref"] = lastEnv
			case 3:
				args["ref"] = "nonsense"
			}
			if op[2]&4 != 0 {
				args["valid"] = "+" + (time.Duration(op[3]) * time.Second).String()
			}
			if op[2]&8 != 0 {
				args["inform"] = InformResume
			}
			if h.s.State() == StateIdle && perf == Propose && op[2]&16 == 0 {
				args["type"] = InvitationType
			}
			body := h.bodyLenient(perf, args)
			if body == nil {
				continue
			}
			env := h.build(h.agent(who), perf, body, now)
			if err := env.Seal(h.parties[who].AgentKey, h.certs[who]); err != nil {
				continue
			}
			switch op[4] % 8 {
			case 1:
				env.Integrity.Signature[int(op[3])%64] ^= 1
			case 2:
				env.SequenceNumber += uint64(op[3] % 3)
			case 3:
				env.Integrity.PreviousHash[int(op[3])%32] ^= 1
			case 4:
				env.Timestamp = env.Timestamp.Add(-time.Duration(op[3]) * time.Second)
			}
			before := snap(h.s)
			head := h.s.Head()
			eff, err := h.s.Step(env, now)
			if err != nil {
				if ErrorCode(err) == CodeInternal {
					t.Fatalf("untyped error %v", err)
				}
				if snap(h.s) != before {
					t.Fatalf("refused %s changed the session: %v", perf, err)
				}
				continue
			}
			if env.Integrity.PreviousHash != head || h.s.Head() != eff.Hash || eff.Hash != env.Hash() {
				t.Fatal("chain not extended by the accepted envelope")
			}
			lastEnv = env.MessageID
			if _, ok := h.s.Offer(env.MessageID); ok {
				lastOffer = env.MessageID
			}
			if op[4]%8 == 7 {
				at := now.Add(time.Duration(op[3]) * time.Second)
				due := h.s.Due(at)
				eff := h.s.Tick(at)
				if changed := eff.From != eff.To || len(eff.Offers) > 0; changed != due {
					t.Fatalf("Due said %v, Tick changed %v", due, changed)
				}
			}
		}
		if h.s.Len() > 0 {
			r, err := Replay(h.s.Config(), h.s.Transcript(), time.Time{})
			if err != nil {
				t.Fatalf("replay of an accepted transcript: %v", err)
			}
			if r.Head() != h.s.Head() || len(r.Commitments()) != len(h.s.Commitments()) {
				t.Fatal("replay differs")
			}
		}
	})
}

// bodyLenient is harness.body without fatal errors for missing refs.
func (h *harness) bodyLenient(p Performative, args map[string]string) Body {
	if args["ref"] == "" {
		delete(args, "ref")
	}
	if args["ref"] != "" && args["ref"] != "nonsense" {
		if _, ok := h.s.byID[args["ref"]]; !ok {
			delete(args, "ref")
		}
	}
	return h.body(p, args)
}

// FuzzReplay replays an arbitrary CBOR array of encoded envelopes: no
// panic, and a transcript that replays does so deterministically.
func FuzzReplay(f *testing.F) {
	seed := fuzzSeedEnvelopes(f)
	all, _ := cbor.Marshal(seed)
	f.Add(all)
	short, _ := cbor.Marshal(seed[:3])
	f.Add(short)
	f.Fuzz(func(t *testing.T, data []byte) {
		var list [][]byte
		if err := decMode.Unmarshal(data, &list); err != nil || len(list) > 64 {
			return
		}
		s, err := ReplayEncoded(Config{}, list, time.Time{})
		if err != nil {
			if ErrorCode(err) == CodeInternal {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		s2, err := ReplayEncoded(Config{}, list, time.Time{})
		if err != nil || s2.Head() != s.Head() || s2.State() != s.State() {
			t.Fatal("replay is not deterministic")
		}
		for _, c := range s.Commitments() {
			if err := VerifyCommitment(c); err != nil {
				t.Fatalf("replayed commitment does not verify: %v", err)
			}
		}
	})
}

func FuzzDecodeCommitment(f *testing.F) {
	k := newDealKit(f, true)
	c := k.receipts(f)
	b, err := EncodeCommitment(c)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	c2, err := c.Apply(k.action(f, ActionDispute, "buyer", t0.Add(time.Hour), "buyer"))
	if err != nil {
		f.Fatal(err)
	}
	b2, _ := EncodeCommitment(c2)
	f.Add(b2)
	a, _ := EncodeAction(c2.Actions[0])
	f.Add(a)
	r, _ := EncodeReceipt(c.Receipts[0])
	f.Add(r)
	f.Fuzz(func(t *testing.T, data []byte) {
		if c, err := DecodeCommitment(data); err == nil {
			if err := VerifyCommitment(c); err != nil {
				t.Fatalf("decoded commitment does not verify: %v", err)
			}
			again, _ := EncodeCommitment(c)
			if !bytes.Equal(again, data) {
				t.Fatal("re-encoding differs")
			}
		}
		if a, err := DecodeAction(data); err == nil {
			again, _ := EncodeAction(a)
			if !bytes.Equal(again, data) {
				t.Fatal("action re-encoding differs")
			}
			_ = a.Verify()
		}
		if r, err := DecodeReceipt(data); err == nil {
			again, _ := EncodeReceipt(r)
			if !bytes.Equal(again, data) {
				t.Fatal("receipt re-encoding differs")
			}
			if r.Verify() == nil && r.CommitmentID != CommitmentID(r.OfferHash, r.AcceptanceHash) {
				t.Fatal("a receipt verifies whose id is not its hashes'")
			}
		}
	})
}

func FuzzParseAgentID(f *testing.F) {
	f.Add("agent://12D3KooWE33aCuQgw48ou1sDGueTweEmbpGc21y1sRGLXDxreEyZ/buyer")
	f.Add("agent://12D3KooWE33aCuQgw48ou1sDGueTweEmbpGc21y1sRGLXDxreEyZ/a.b-c_d")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAgentID(s)
		if err != nil {
			return
		}
		if a.String() != s {
			t.Fatalf("%q parses but formats as %q", s, a.String())
		}
		pub, err := a.OrgKey()
		if err != nil || PeerIDFromPublicKey(pub) != a.Org {
			t.Fatal("org key does not round trip")
		}
	})
}
