package protocol

import (
	"crypto/ed25519"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/aspnode/asp/internal/cputime"
)

// cpuMetric starts measuring; call the result when the loop is done.
func cpuMetric(b *testing.B) func() {
	b.ResetTimer()
	start := int64(cputime.Process())
	return func() {
		b.StopTimer()
		b.ReportMetric(float64(int64(cputime.Process())-start)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkEd25519Verify is the floor of a transition: one bare signature
// check with the verifier the protocol uses (verifyEd25519).
func BenchmarkEd25519Verify(b *testing.B) {
	benchVerify(b, verifyEd25519)
}

// BenchmarkEd25519VerifyStdlib is the same check with crypto/ed25519, for
// comparison.
func BenchmarkEd25519VerifyStdlib(b *testing.B) {
	benchVerify(b, func(pub ed25519.PublicKey, msg, sig []byte) bool { return ed25519.Verify(pub, msg, sig) })
}

func benchVerify(b *testing.B, verify func(ed25519.PublicKey, []byte, []byte) bool) {
	k := FixtureParty("bench", "x").AgentKey
	msg := signedMessage(domainEnvelope, sha256.Sum256([]byte("x")))
	sig := ed25519.Sign(k, msg)
	pub := k.Public().(ed25519.PublicKey)
	done := cpuMetric(b)
	defer done()
	for range b.N {
		if !verify(pub, msg, sig) {
			b.Fatal("verify")
		}
	}
}

func BenchmarkSignEnvelope(b *testing.B) {
	d := seedDeal(b)
	e := *d.Transcript[3] // the vendor's COUNTER
	key := FixtureParty("vendor", "vendor").AgentKey
	b.ReportAllocs()
	done := cpuMetric(b)
	defer done()
	for range b.N {
		if err := e.Sign(key); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyEnvelope verifies an envelope alone: its certificate and
// its signature (two Ed25519 verifications), as an auditor does.
func BenchmarkVerifyEnvelope(b *testing.B) {
	d := seedDeal(b)
	e := d.Transcript[3]
	b.ReportAllocs()
	done := cpuMetric(b)
	defer done()
	for range b.N {
		if err := e.Verify(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStep is verify plus transition in a live session: well-formedness,
// hash, signature (the certificate is verified once per session), chain,
// sequence, freshness, legality and apply. Offers alternate between the
// parties (COUNTER after COUNTER), each superseding the last.
func BenchmarkStep(b *testing.B) {
	d := seedDeal(b)
	buyer, vendor := FixtureParty("buyer", "buyer"), FixtureParty("vendor", "vendor")
	cfg := Config{MaxMessages: b.N + 16}
	mk := func() *Session {
		s := NewSession(cfg, d.Session.ID(), d.Buyer, d.Vendor, t0)
		for _, e := range d.Transcript[:5] { // up to the buyer's open PROPOSE 2.55
			if _, err := s.Step(e, e.Timestamp); err != nil {
				b.Fatal(err)
			}
		}
		return s
	}
	gen := mk()
	rnd := FixtureRand("bench")
	envs := make([]*Envelope, b.N)
	now := d.Transcript[4].Timestamp
	for i := range envs {
		now = now.Add(time.Millisecond)
		p, key, cert := d.Vendor, vendor.AgentKey, d.VendorCert
		if i%2 == 1 {
			p, key, cert = d.Buyer, buyer.AgentKey, d.BuyerCert
		}
		e, err := gen.Prepare(p, Counter, &CounterBody{Terms: Terms{UnitPrice: "2.50"}}, now, rnd)
		if err != nil {
			b.Fatal(err)
		}
		if err := e.Seal(key, cert); err != nil {
			b.Fatal(err)
		}
		if _, err := gen.Step(e, now); err != nil {
			b.Fatal(err)
		}
		envs[i] = e
	}
	s := mk()
	b.ReportAllocs()
	done := cpuMetric(b)
	defer done()
	for i := range b.N {
		if _, err := s.Step(envs[i], envs[i].Timestamp); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReplaySeedDeal(b *testing.B) {
	d := seedDeal(b)
	b.ReportAllocs()
	done := cpuMetric(b)
	defer done()
	for range b.N {
		if _, err := Replay(Config{}, d.Transcript, time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeEnvelope(b *testing.B) {
	e := seedDeal(b).Transcript[3]
	b.ReportAllocs()
	done := cpuMetric(b)
	defer done()
	for range b.N {
		if _, err := EncodeEnvelope(e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeEnvelope(b *testing.B) {
	raw, _ := EncodeEnvelope(seedDeal(b).Transcript[3])
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	done := cpuMetric(b)
	defer done()
	for range b.N {
		if _, err := DecodeEnvelope(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEnvelopeHash(b *testing.B) {
	e := seedDeal(b).Transcript[3]
	b.ReportAllocs()
	done := cpuMetric(b)
	defer done()
	for range b.N {
		_ = e.Hash()
	}
}
