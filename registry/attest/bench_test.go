package attest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aspnode/asp/internal/cputime"
	"github.com/aspnode/asp/p2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/sync/errgroup"
)

// Shape of the benchmark network.
const (
	benchNodes  = 100
	benchChords = 2 // random links each node adds to a ring: ~6 neighbours each
	benchSeed   = 1
)

// benchNet is benchNodes hosts on 127.0.0.1 (TCP), each a Service, in a
// sparse random topology: a ring plus benchChords random links per node,
// each host allowed to meet only its neighbours.
type benchNet struct {
	hosts []*p2p.Host
	svcs  []*Service
	nb    [][]int
	mesh  []*meshTracer
	wg    sync.WaitGroup // subscriber loops

	mu      sync.Mutex
	arrived map[[32]byte][]time.Time // arrival times at each node, publisher included
	notify  chan struct{}
}

var (
	benchRound uint64 // runs of BenchmarkGossip100 in this process
	benchOnce  sync.Once
	theBench   *benchNet
	benchErr   error
)

// getBenchNet builds the network on first use; TestMain closes it.
func getBenchNet(b *testing.B) *benchNet {
	b.Helper()
	benchOnce.Do(func() {
		start := time.Now()
		theBench, benchErr = startBenchNet(benchNodes, benchChords, benchSeed)
		if benchErr == nil {
			b.Logf("network of %d nodes up in %v (seed %d, degree min %d / mean %.1f / max %d)",
				benchNodes, time.Since(start).Round(time.Millisecond), benchSeed, theBench.degree(slices.Min),
				theBench.meanDegree(), theBench.degree(slices.Max))
		}
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return theBench
}

func closeBenchNet() {
	if theBench != nil {
		theBench.close()
		theBench = nil
	}
}

// topology returns each node's neighbours: a ring, plus chords random
// links from each node.
func topology(n, chords int, rng *mrand.Rand) [][]int {
	adj := make([]map[int]bool, n)
	for i := range adj {
		adj[i] = map[int]bool{}
	}
	link := func(a, b int) {
		if a != b {
			adj[a][b], adj[b][a] = true, true
		}
	}
	for i := range n {
		link(i, (i+1)%n)
	}
	for i := range n {
		for added := 0; added < chords; {
			j := rng.IntN(n)
			if j == i || adj[i][j] {
				continue
			}
			link(i, j)
			added++
		}
	}
	out := make([][]int, n)
	for i, m := range adj {
		for j := range m {
			out[i] = append(out[i], j)
		}
		slices.Sort(out[i])
	}
	return out
}

func startBenchNet(n, chords int, seed uint64) (_ *benchNet, err error) {
	bn := &benchNet{
		nb:      topology(n, chords, mrand.New(mrand.NewPCG(seed, seed))),
		arrived: map[[32]byte][]time.Time{},
		notify:  make(chan struct{}, 1),
	}
	defer func() {
		if err != nil {
			bn.close()
		}
	}()
	for range n {
		k, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			return nil, err
		}
		tr := &meshTracer{mesh: map[peer.ID]bool{}}
		h, err := p2p.New(context.Background(), p2p.Config{Key: k, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}},
			p2p.WithPubSubOptions(pubsub.WithRawTracer(tr)))
		if err != nil {
			return nil, err
		}
		bn.hosts = append(bn.hosts, h)
		bn.mesh = append(bn.mesh, tr)
	}
	for i, h := range bn.hosts {
		var allow []string
		for _, j := range bn.nb[i] {
			allow = append(allow, bn.hosts[j].ID().String())
		}
		if err := h.SetAccessLists(allow, nil); err != nil {
			return nil, err
		}
		svc, err := New(Config{Clock: fixedClock(testNow)})
		if err != nil {
			return nil, err
		}
		if err := svc.Join(context.Background(), h.PubSub()); err != nil {
			return nil, err
		}
		bn.svcs = append(bn.svcs, svc)
		ch, _ := svc.Subscribe()
		bn.wg.Add(1)
		go func() {
			defer bn.wg.Done()
			for d := range ch {
				at := time.Now()
				bn.mu.Lock()
				bn.arrived[d.Hash] = append(bn.arrived[d.Hash], at)
				bn.mu.Unlock()
				select {
				case bn.notify <- struct{}{}:
				default:
				}
			}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var g errgroup.Group
	g.SetLimit(8)
	for i := range bn.hosts {
		for _, j := range bn.nb[i] {
			if j > i {
				g.Go(func() error { return bn.hosts[i].Connect(ctx, bn.hosts[j].AddrInfo()) })
			}
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	// Every node has grafted its neighbours (up to GossipSub's D_lo = 5).
	for i := range bn.hosts {
		want := min(len(bn.nb[i]), 5)
		for bn.mesh[i].size() < want {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("mesh of node %d: %d of %d peers", i, bn.mesh[i].size(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return bn, nil
}

func (bn *benchNet) degree(pick func([]int) int) int {
	d := make([]int, len(bn.nb))
	for i, nb := range bn.nb {
		d[i] = len(nb)
	}
	return pick(d)
}

func (bn *benchNet) meanDegree() float64 {
	s := 0
	for _, nb := range bn.nb {
		s += len(nb)
	}
	return float64(s) / float64(len(bn.nb))
}

func (bn *benchNet) close() {
	for _, s := range bn.svcs {
		_ = s.Close()
	}
	bn.wg.Wait()
	var wg sync.WaitGroup
	for _, h := range bn.hosts {
		wg.Go(func() { _ = h.Close() })
	}
	wg.Wait()
}

// count returns how many nodes hold h.
func (bn *benchNet) count(h [32]byte) int {
	bn.mu.Lock()
	defer bn.mu.Unlock()
	return len(bn.arrived[h])
}

// await waits until at least want nodes hold h or the deadline passes.
func (bn *benchNet) await(h [32]byte, want int, deadline time.Time) bool {
	for bn.count(h) < want {
		d := time.Until(deadline)
		if d <= 0 {
			return false
		}
		select {
		case <-bn.notify:
		case <-time.After(min(d, 10*time.Millisecond)):
		}
	}
	return true
}

// BenchmarkGossip100 publishes attestations, one at a time, from random
// nodes of a 100-node network and measures how long each takes to reach
// 99 % of the nodes (publisher included), and each node's delivery time.
// Each publication is verified by every node before it forwards it.
//
//	go test -run '^$' -bench Gossip100 -benchtime 200x ./registry/attest/
func BenchmarkGossip100(b *testing.B) {
	bn := getBenchNet(b)
	benchRound++
	rng := mrand.New(mrand.NewPCG(benchSeed, benchRound))
	// One attestation per commitment, each commitment a new deal, so that
	// every node verifies every publication in full; signed ahead. Deals
	// of different rounds start at different times.
	base := t0.Add(-time.Duration(benchRound) * 24 * time.Hour)
	atts := make([]*Attestation, b.N)
	for i := range atts {
		f := newFixtureAt(b, "bench", base.Add(time.Duration(i)*time.Second))
		atts[i] = f.attest(b, Fulfilled, t0.Add(time.Hour))
	}
	want := (len(bn.hosts)*99 + 99) / 100 // 99 % of the nodes
	var (
		t99    []time.Duration // per publication: until 99 % hold it
		each   []time.Duration // per delivery to a node other than the publisher
		missed int
		hashes = make([][32]byte, 0, b.N)
		starts = make([]time.Time, 0, b.N)
	)
	// The network's own upkeep (heartbeats, DHT), with nothing published.
	idle0, idleStart := cputime.Process(), time.Now()
	time.Sleep(2 * time.Second)
	idle := float64(cputime.Process()-idle0) / float64(time.Since(idleStart)) // cores busy
	cpu0, wall0 := cputime.Process(), time.Now()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		origin := rng.IntN(len(bn.svcs))
		h, err := atts[i].Hash()
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := bn.svcs[origin].Publish(context.Background(), atts[i]); err != nil {
			if errors.Is(err, ErrDuplicate) {
				continue
			}
			b.Fatal(err)
		}
		hashes, starts = append(hashes, h), append(starts, start)
		if !bn.await(h, want, start.Add(5*time.Second)) {
			missed++
			continue
		}
		bn.mu.Lock()
		at := slices.Clone(bn.arrived[h])
		bn.mu.Unlock()
		slices.SortFunc(at, func(x, y time.Time) int { return x.Compare(y) })
		t99 = append(t99, at[want-1].Sub(start))
	}
	b.StopTimer()
	cpu := cputime.Process() - cpu0
	wall := time.Since(wall0)
	// Let the last deliveries land, then gather every node's.
	for k, h := range hashes {
		bn.await(h, len(bn.hosts), starts[k].Add(2*time.Second))
	}
	bn.mu.Lock()
	complete := 0
	for k, h := range hashes {
		at := slices.Clone(bn.arrived[h])
		if len(at) == len(bn.hosts) {
			complete++
		}
		slices.SortFunc(at, func(x, y time.Time) int { return x.Compare(y) })
		for _, a := range at[1:] { // the first is the publisher's own
			each = append(each, a.Sub(starts[k]))
		}
	}
	bn.mu.Unlock()
	if len(t99) == 0 {
		b.Fatalf("no publication reached 99 %% of the nodes (%d missed)", missed)
	}
	b.ReportMetric(ms(pct(t99, 50)), "t99-p50-ms")
	b.ReportMetric(ms(pct(t99, 99)), "t99-p99-ms")
	b.ReportMetric(ms(pct(each, 50)), "node-p50-ms")
	b.ReportMetric(ms(pct(each, 99)), "node-p99-ms")
	b.ReportMetric(float64(complete)/float64(len(hashes))*100, "reached-all-%")
	b.ReportMetric(float64(missed), "missed-99%")
	// CPU the whole process (100 nodes) spent per publication: what the
	// delivery time is made of on a busy machine.
	b.ReportMetric(ms(cpu)/float64(b.N), "cpu-ms/op")
	// The same less the upkeep: the work of gossiping one attestation.
	b.ReportMetric((ms(cpu)-idle*ms(wall))/float64(b.N), "net-cpu-ms/op")
	if l, ok := loadAverage(); ok {
		b.ReportMetric(l, "loadavg")
	}
	iwant := 0
	for _, m := range bn.mesh {
		m.mu.Lock()
		iwant += m.iwant
		m.mu.Unlock()
	}
	b.ReportMetric(float64(iwant), "iwant")
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// loadAverage is the machine's one-minute load average (Linux), which says
// how much of the CPU the benchmark had.
func loadAverage() (float64, bool) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, false
	}
	l, err := strconv.ParseFloat(f[0], 64)
	return l, err == nil
}
