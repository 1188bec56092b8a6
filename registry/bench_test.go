package registry

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchNodes is the size of the benchmark network (ASP_BENCH_NODES
// overrides it).
func benchNodes() int {
	if s := os.Getenv("ASP_BENCH_NODES"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 1 {
			return n
		}
	}
	return 100
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(p * float64(len(s)-1))
	return s[i]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkNetwork builds an in-process network of 100 real libp2p hosts
// on 127.0.0.1 (TCP, server-mode DHTs), publishes 30 agents on 30 of
// them, and measures:
//
//	mem:          heap+stack per node (host, DHT and registry), MemStats delta / n
//	discover-cold: Discover(Fresh) from a random node for a random capability:
//	              provider lookup, card fetches, verification (p50, p99)
//	discover-cached: the same answered from the cache
//	propagation:  a new agent with a new capability published on a random
//	              node: Publish latency, then every node discovers it at
//	              once; time from Publish until the last node found it
//	              (p50, max), the share found on the first try, and how
//	              many first answers were complete yet lacked the card
//	              (a first try that misses is otherwise a partial answer:
//	              100 simultaneous lookups on a few cores hit the deadline)
//
// Run: go test -run '^$' -bench Network -benchtime 300x ./registry/
func BenchmarkNetwork(b *testing.B) {
	n := benchNodes()
	seed := uint64(time.Now().UnixNano())
	b.Logf("nodes %d, seed %d", n, seed)
	rng := rand.New(rand.NewPCG(seed, 2))

	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	g0 := runtime.NumGoroutine()
	setup := time.Now()
	// A long CacheTTL so that the cached figures measure hits even when
	// warming every node's cache takes a while on a loaded machine.
	// The production deadlines: a partial answer counts as wrong.
	nodes := newTestNet(b, n, netOptions{configure: func(c *Config) {
		c.CacheTTL = time.Hour
		c.DiscoverTimeout, c.FetchTimeout = DefaultDiscoverTimeout, DefaultFetchTimeout
	}})
	b.Logf("network of %d nodes up in %s", n, time.Since(setup).Round(time.Millisecond))

	cats := []string{"compute", "storage", "legal", "logistics", "energy"}
	subs := []string{"alpha", "beta", "gamma"}
	mdl := &model{caps: map[string][]string{}}
	ctx := context.Background()
	var wg sync.WaitGroup
	pubStart := time.Now()
	for i := 0; i < 30 && i < n; i++ {
		node := nodes[(i*n)/30]
		caps := []string{cats[i%len(cats)] + "." + subs[i%len(subs)]}
		if i%2 == 0 {
			caps = append(caps, cats[(i+2)%len(cats)]+"."+subs[(i+1)%len(subs)])
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := node.r.Publish(ctx, Agent{Name: fmt.Sprintf("agent-%d", i), Capabilities: caps, PublicKey: agentKey(b)})
			if err != nil {
				b.Error(err)
				return
			}
			mdl.set(c.AgentID, c.Capabilities)
		}()
	}
	wg.Wait()
	b.Logf("30 agents published in %s", time.Since(pubStart).Round(time.Millisecond))
	var queries []string
	for _, c := range cats {
		queries = append(queries, c)
		for _, s := range subs {
			queries = append(queries, c+"."+s)
		}
	}

	runtime.GC()
	runtime.ReadMemStats(&m1)
	perNode := (float64(m1.HeapAlloc+m1.StackInuse) - float64(m0.HeapAlloc+m0.StackInuse)) / float64(n)
	b.Logf("memory per node: %.2f MiB (heap %.2f MiB, stacks %.2f MiB), goroutines per node %.0f",
		perNode/(1<<20), (float64(m1.HeapAlloc)-float64(m0.HeapAlloc))/float64(n)/(1<<20),
		(float64(m1.StackInuse)-float64(m0.StackInuse))/float64(n)/(1<<20),
		float64(runtime.NumGoroutine()-g0)/float64(n))

	discover := func(b *testing.B, opts ...DiscoverOption) {
		var lat []time.Duration
		wrong := 0
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			nd := nodes[rng.IntN(n)]
			q := queries[rng.IntN(len(queries))]
			start := time.Now()
			res, err := nd.r.Discover(ctx, q, 0, 0, opts...)
			lat = append(lat, time.Since(start))
			if err != nil {
				b.Fatal(err)
			}
			if got := ids(res); !slices.Equal(got, mdl.want(q)) || res.Partial {
				wrong++
			}
		}
		b.StopTimer()
		b.ReportMetric(ms(percentile(lat, 0.5)), "p50-ms")
		b.ReportMetric(ms(percentile(lat, 0.99)), "p99-ms")
		b.ReportMetric(float64(wrong), "wrong")
		b.ReportMetric(perNode/(1<<20), "MiB/node")
	}
	b.Run("discover-cold", func(b *testing.B) { discover(b, Fresh()) })
	b.Run("discover-cached", func(b *testing.B) {
		for _, nd := range nodes { // warm every node's cache
			for _, q := range queries {
				if _, err := nd.r.Discover(ctx, q, 0, 0); err != nil {
					b.Fatal(err)
				}
			}
		}
		discover(b)
	})

	seq := 0 // across runs of the sub-benchmark
	b.Run("propagation", func(b *testing.B) {
		var all, pub []time.Duration
		var firstTry, missed atomic.Int64
		for range b.N {
			seq++
			i := seq
			capName := fmt.Sprintf("bench.new-%d", i)
			nd := nodes[rng.IntN(n)]
			start := time.Now()
			c, err := nd.r.Publish(ctx, Agent{Name: fmt.Sprintf("new-%d", i), Capabilities: []string{capName}, PublicKey: agentKey(b)})
			if err != nil {
				b.Fatal(err)
			}
			pub = append(pub, time.Since(start))
			// Right after Publish returns, every node asks once (all at
			// once); a node that misses asks again until it finds it.
			seen := make([]time.Duration, n)
			var wg sync.WaitGroup
			for j, other := range nodes {
				wg.Add(1)
				go func() {
					defer wg.Done()
					deadline := time.Now().Add(30 * time.Second)
					for try := 0; time.Now().Before(deadline); try++ {
						res, err := other.r.Discover(ctx, capName, 0, 0, Fresh())
						if err == nil && len(res.Agents) == 1 && res.Agents[0].Card.AgentID == c.AgentID {
							seen[j] = time.Since(start)
							if try == 0 {
								firstTry.Add(1)
							}
							return
						}
						if try == 0 && err == nil && !res.Partial {
							missed.Add(1) // a complete answer without the new card
						}
						time.Sleep(5 * time.Millisecond)
					}
					seen[j] = -1
				}()
			}
			wg.Wait()
			worst := time.Duration(0)
			for _, s := range seen {
				if s < 0 {
					b.Fatalf("a node never found %s", capName)
				}
				worst = max(worst, s)
			}
			all = append(all, worst)
		}
		sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
		b.ReportMetric(ms(percentile(pub, 0.5)), "publish-p50-ms")
		b.ReportMetric(ms(percentile(all, 0.5)), "all-nodes-p50-ms")
		b.ReportMetric(ms(all[len(all)-1]), "all-nodes-max-ms")
		b.ReportMetric(100*float64(firstTry.Load())/float64(b.N*n), "first-try-%")
		b.ReportMetric(float64(missed.Load()), "complete-misses")
	})
}
