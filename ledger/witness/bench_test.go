package witness

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// BenchmarkRound measures one witnessing round, as the two nodes run it:
// the log builds the request (consistency proof from its ledger) and
// encodes it; the witness decodes it, verifies the checkpoint and the
// proof, stores the new size with a synced check-and-set and cosigns; the
// log decodes the response and verifies the cosignature. The log's own
// append and checkpoint are outside the measure. It reports p50/p99 of the
// round next to its floors, measured in the same run on the same disk:
// one Ed25519 signature, two verifications (the log's signature at the
// witness, the cosignature at the log) and one synced Pebble write.
//
//	go test -run '^$' -bench Round -benchtime 2000x ./ledger/witness/
func BenchmarkRound(b *testing.B) {
	dir := b.TempDir()
	l, cert := openLog(b, nil, filepath.Join(dir, "log"), logOrg)
	db, err := pebble.Open(filepath.Join(dir, "witness"), &pebble.Options{Logger: quiet{}})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	st, _ := NewPebbleStore(db, []byte("w/"))
	w, err := New(Config{Key: witnessOrg, Store: st, Verifier: Certificates(cert)})
	if err != nil {
		b.Fatal(err)
	}
	vkey := w.VerifierKey()
	ctx := context.Background()
	grow(b, l, "warm", 1000)
	var old uint64
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		cp := grow(b, l, "round", 1+i%4)
		b.StartTimer()
		start := time.Now()
		req, err := NewRequest(l, old, cp)
		if err != nil {
			b.Fatal(err)
		}
		body, err := EncodeRequest(req)
		if err != nil {
			b.Fatal(err)
		}
		// Witness side.
		got, err := DecodeRequest(body)
		if err != nil {
			b.Fatal(err)
		}
		resp, err := EncodeResponse(ResponseFor(w.AddCheckpoint(ctx, *got)))
		if err != nil {
			b.Fatal(err)
		}
		// Log side.
		r, err := DecodeResponse(resp)
		if err != nil || r.Err() != nil {
			b.Fatal(err, r.Err())
		}
		if _, err := VerifyCosignature(cp, r.Cosignature, vkey); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
		old = l.Size()
	}
	b.StopTimer()
	sign, verify, sync := floors(b, db)
	floor := sign + 2*verify + sync
	b.ReportMetric(us(percentile(lat, 0.5)), "p50-µs")
	b.ReportMetric(us(percentile(lat, 0.99)), "p99-µs")
	b.ReportMetric(us(floor), "floor-µs")
	b.ReportMetric(us(sign), "sign-µs")
	b.ReportMetric(us(verify), "verify-µs")
	b.ReportMetric(us(sync), "sync-µs")
}

// floors measures one Ed25519 signature and verification of a
// cosignature-sized message (mean of 2000), and the p50 of 300 synced
// one-key Pebble batches on db.
func floors(b *testing.B, db *pebble.DB) (sign, verify, sync time.Duration) {
	msg := []byte(cosignedMessage(1_750_000_000, checkpointText(originOf(logOrg), 1<<20, emptyRoot)))
	pub := witnessOrg.Public().(ed25519.PublicKey)
	sig := ed25519.Sign(witnessOrg, msg)
	timeIt := func(n int, f func()) time.Duration {
		start := time.Now()
		for i := 0; i < n; i++ {
			f()
		}
		return time.Since(start) / time.Duration(n)
	}
	sign = timeIt(2000, func() { ed25519.Sign(witnessOrg, msg) })
	verify = timeIt(2000, func() { ed25519.Verify(pub, msg, sig) })
	var syncs []time.Duration
	for i := 0; i < 300; i++ {
		s := time.Now()
		if err := db.Set(fmt.Appendf(nil, "floor/%d", i), msg, pebble.Sync); err != nil {
			b.Fatal(err)
		}
		syncs = append(syncs, time.Since(s))
	}
	return sign, verify, percentile(syncs, 0.5)
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p)]
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
