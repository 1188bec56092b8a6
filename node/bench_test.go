package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aspnode/asp/internal/cputime"
	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/p2p"
	"github.com/cockroachdb/pebble/v2"
	"github.com/libp2p/go-libp2p/core/peer"
	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// The benchmarks below compare the seed deal with what it is made of,
// measured in the same run:
//
//	go test -run '^$' -bench 'SeedDeal|Floors|PlainHTTP|Commitments' -benchtime 200x ./node/
//
// BenchmarkSeedDeal reports p50/p99 of one whole deal (first PROPOSE to
// ACTIVE on both nodes); BenchmarkFloors reports the sum of the deal's
// irreducible parts; BenchmarkPlainHTTP the same four moves as plain JSON
// over HTTP with no signatures and no ledger.

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p)
	return s[i]
}

func report(b *testing.B, lat []time.Duration) {
	b.ReportMetric(float64(percentile(lat, 0.5).Microseconds()), "p50-µs")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds()), "p99-µs")
}

// benchPair is newPair with the bound on sessions the buyer may hold open at
// the vendor lifted: a benchmark opens b.N sessions and leaves them open.
func benchPair(b *testing.B) *pair {
	dir := b.TempDir()
	lift := func(c *Config) { c.MaxInboundSessionsPerOrg, c.MaxInboundSessions = 1<<30, 1<<30 }
	a := startNodeWith(b, filepath.Join(dir, "buyer-org"), lift)
	v := startNodeWith(b, filepath.Join(dir, "vendor-org"), lift)
	b.Cleanup(func() { a.Close(); v.Close() })
	connect(b, a, v)
	return withAgents(b, a, v)
}

func BenchmarkSeedDeal(b *testing.B) {
	p := benchPair(b)
	ctx := context.Background()
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s, err := p.buyerNode.OpenSession(ctx, p.buyer, api.OpenSessionRequest{To: p.vendor})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		id := playDeal(b, p, s.SessionID)
		awaitActive(b, p.vendorNode, id)
		awaitActive(b, p.buyerNode, id)
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	report(b, lat)
}

func playDeal(b testing.TB, p *pair, sid string) string {
	ctx := context.Background()
	moves := []struct {
		n     *Node
		from  string
		perf  string
		price string
	}{
		{p.buyerNode, p.buyer, "PROPOSE", "2.40"},
		{p.vendorNode, p.vendor, "COUNTER", "2.80"},
		{p.buyerNode, p.buyer, "PROPOSE", "2.55"},
		{p.vendorNode, p.vendor, "ACCEPT", ""},
	}
	var id string
	for _, m := range moves {
		req := api.SendMessageRequest{Performative: m.perf}
		if m.price != "" {
			req.Terms = terms(m.price)
		}
		r, err := m.n.SendMessage(ctx, m.from, sid, req)
		if err != nil {
			b.Fatalf("%s: %v", m.perf, err)
		}
		id = r.CommitmentID
	}
	return id
}

// BenchmarkFloors measures, on this machine now, the parts a deal cannot do
// without: 4 moves each with a signature, a verification, one synced write on
// each side and a round trip; the commitment adds two receipts (sign +
// verify), two checkpoints, a round trip and two synced writes on each side.
func BenchmarkFloors(b *testing.B) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	msg := make([]byte, 400)
	sig := ed25519.Sign(priv, msg)
	pub := priv.Public().(ed25519.PublicKey)
	timeIt := func(n int, f func()) time.Duration {
		start := time.Now()
		for i := 0; i < n; i++ {
			f()
		}
		return time.Since(start) / time.Duration(n)
	}
	signT := timeIt(2000, func() { ed25519.Sign(priv, msg) })
	// The verifier the protocol uses (curve25519-voi with crypto/ed25519's
	// rules, see protocol/verify.go).
	rules := &voi.Options{Verify: voi.VerifyOptionsStdLib}
	verifyT := timeIt(2000, func() { voi.VerifyWithOptions(voi.PublicKey(pub), msg, sig, rules) })

	db, err := pebble.Open(b.TempDir(), &pebble.Options{Logger: pebbleLogger{discardLog()}})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var syncs []time.Duration
	for i := 0; i < 300; i++ {
		s := time.Now()
		if err := db.Set(fmt.Appendf(nil, "k%d", i), msg, pebble.Sync); err != nil {
			b.Fatal(err)
		}
		syncs = append(syncs, time.Since(s))
	}
	syncT := percentile(syncs, 0.5)

	rtt := measureRTT(b)
	// Seed deal: invitation excluded; 4 moves; commitment with receipt exchange.
	moves := 4
	floor := time.Duration(moves)*(signT+verifyT+2*syncT+rtt) + // moves
		2*(signT+verifyT) + 4*syncT + rtt // receipts: each side signs one, verifies one; commitment+receipt writes; one more round trip
	b.ReportMetric(float64(signT.Nanoseconds())/1e3, "sign-µs")
	b.ReportMetric(float64(verifyT.Nanoseconds())/1e3, "verify-µs")
	b.ReportMetric(float64(syncT.Nanoseconds())/1e3, "fsync-p50-µs")
	b.ReportMetric(float64(rtt.Nanoseconds())/1e3, "rtt-p50-µs")
	b.ReportMetric(float64(floor.Microseconds()), "deal-floor-µs")
	for i := 0; i < b.N; i++ {
	}
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func measureRTT(b *testing.B) time.Duration {
	ctx := context.Background()
	mk := func() *p2p.Host {
		k, err := p2p.LoadOrCreateKey(filepath.Join(b.TempDir(), "k"))
		if err != nil {
			b.Fatal(err)
		}
		h, err := p2p.New(ctx, p2p.Config{Key: k, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
		if err != nil {
			b.Fatal(err)
		}
		return h
	}
	h1, h2 := mk(), mk()
	defer h1.Close()
	defer h2.Close()
	h2.Handle("/bench/1", func(ctx context.Context, from peer.ID, req []byte) ([]byte, error) { return req, nil })
	if err := h1.Connect(ctx, peer.AddrInfo{ID: h2.ID(), Addrs: h2.Addrs()}); err != nil {
		b.Fatal(err)
	}
	var lat []time.Duration
	for i := 0; i < 1000; i++ {
		s := time.Now()
		if _, err := h1.Request(ctx, h2.ID(), "/bench/1", []byte("ping")); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(s))
	}
	return percentile(lat, 0.5)
}

// BenchmarkPlainHTTP plays the four moves as plain JSON over HTTP on
// loopback, with no signatures and no ledger: what a naive integration costs.
func BenchmarkPlainHTTP(b *testing.B) {
	var mu sync.Mutex
	state := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		mu.Lock()
		state[fmt.Sprint(m["session"])]++
		mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"ok": true})
	}))
	defer srv.Close()
	c := srv.Client()
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		for _, perf := range []string{"PROPOSE", "COUNTER", "PROPOSE", "ACCEPT"} {
			body, _ := json.Marshal(map[string]any{"session": i, "performative": perf, "terms": terms("2.55")})
			resp, err := c.Post(srv.URL, "application/json", bytes.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	report(b, lat)
}

// BenchmarkCommitments256 runs many sessions at once between two nodes and
// reports commitments per second (each ACTIVE on both nodes).
func BenchmarkCommitments256(b *testing.B) {
	p := benchPair(b)
	ctx := context.Background()
	const conc = 256
	total := b.N
	if total < conc {
		total = conc
	}
	sids := make([]string, total)
	for i := range sids {
		s, err := p.buyerNode.OpenSession(ctx, p.buyer, api.OpenSessionRequest{To: p.vendor})
		if err != nil {
			b.Fatal(err)
		}
		sids[i] = s.SessionID
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	ids := make([]string, total)
	b.ResetTimer()
	start := time.Now()
	cpu0 := cputime.Process()
	st0 := [2]ledger.Stats{p.buyerNode.led.Stats(), p.vendorNode.led.Stats()}
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				ids[i] = playDeal(b, p, sids[i])
			}
		}()
	}
	wg.Wait()
	for _, id := range ids {
		awaitActive(b, p.buyerNode, id)
		awaitActive(b, p.vendorNode, id)
	}
	el := time.Since(start)
	cpu := cputime.Process() - cpu0
	b.StopTimer()
	b.ReportMetric(float64(total)/el.Seconds(), "commitments/s")
	// CPU spent per commitment by both nodes (and the driving goroutines),
	// and how busy the cores were: below the core count, the rest is waiting.
	b.ReportMetric(float64(cpu.Microseconds())/float64(total), "cpu-µs/commitment")
	b.ReportMetric(cpu.Seconds()/el.Seconds(), "cores-busy")
	// Synced ledger commits per commitment (both nodes) and their mean time.
	var batches, entries uint64
	var commit time.Duration
	for i, n := range []*Node{p.buyerNode, p.vendorNode} {
		st := n.led.Stats()
		batches += st.Batches - st0[i].Batches
		entries += st.Entries - st0[i].Entries
		commit += st.CommitTime - st0[i].CommitTime
	}
	b.ReportMetric(float64(batches)/float64(total), "syncs/commitment")
	b.ReportMetric(float64(entries)/float64(total), "entries/commitment")
	if batches > 0 {
		b.ReportMetric(float64(commit.Microseconds())/float64(batches), "µs/sync")
	}
}
