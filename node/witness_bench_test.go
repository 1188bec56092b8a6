package node

import (
	"context"
	"testing"
	"time"

	"github.com/aspnode/asp/ledger"
)

// BenchmarkWitnessRound measures one witnessing round between two real
// nodes on loopback: the log signs a checkpoint one entry larger, builds
// the consistency proof, sends it over /asp/witness/1.0.0; the witness
// verifies it, stores it with a synced check-and-set, cosigns, records the
// anchor (a synced append); the log verifies and stores the cosignature
// (a synced write).
//
//	go test -run '^$' -bench WitnessRound -benchtime 300x ./node/
func BenchmarkWitnessRound(b *testing.B) {
	p := benchPair(b)
	id := seedDeal(b, p)
	awaitActive(b, p.buyerNode, id)
	a, v := p.buyerNode, p.vendorNode
	awaitf(b, "first cosignature", func() bool { return cosignedBy(b, a, v.peerID) > 0 })
	ctx := context.Background()
	wp := a.wit.rounds[v.peerID]
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		if _, err := a.led.Append(ctx, ledger.Record{Kind: 200, Time: time.Now(), Body: []byte("x")}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		outcome, err := a.witnessOnce(ctx, wp)
		lat = append(lat, time.Since(start))
		if err != nil || outcome != "cosigned" {
			b.Fatalf("round: %s %v", outcome, err)
		}
	}
	b.StopTimer()
	report(b, lat)
}
