package p2p

import (
	"bufio"
	"context"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

const rawEchoProto = protocol.ID("/asp/bench-raw/1.0.0")

// benchPair returns two connected hosts over one transport, the second
// serving echoProto with Handle and rawEchoProto with a bare frame echo loop.
func benchPair(b *testing.B, tr string) (*Host, *Host) {
	a := newHost(b, tr, Config{})
	s := newHost(b, tr, Config{})
	s.Handle(echoProto, func(_ context.Context, _ peer.ID, req []byte) ([]byte, error) { return req, nil })
	s.Host().SetStreamHandler(rawEchoProto, func(st network.Stream) {
		br := bufio.NewReader(st)
		for {
			f, err := ReadFrame(br, 0)
			if err != nil {
				_ = st.Reset()
				return
			}
			if err := WriteFrame(st, f); err != nil {
				_ = st.Reset()
				return
			}
		}
	})
	connect(b, a, s)
	return a, s
}

// reportPercentiles reports the p50 and p99 of the given latencies.
func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	us := func(q float64) float64 {
		return float64(lat[int(q*float64(len(lat)-1))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(us(0.50), "p50-µs")
	b.ReportMetric(us(0.99), "p99-µs")
}

// BenchmarkStreamRoundTrip is the floor: 64-byte frames echoed on one raw
// libp2p stream, no request layer.
func BenchmarkStreamRoundTrip(b *testing.B) {
	for _, tr := range transports {
		b.Run(tr, func(b *testing.B) {
			a, s := benchPair(b, tr)
			st, err := a.Host().NewStream(context.Background(), s.ID(), rawEchoProto)
			if err != nil {
				b.Fatal(err)
			}
			defer st.Reset()
			br := bufio.NewReader(st)
			msg := make([]byte, 64)
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				if err := WriteFrame(st, msg); err != nil {
					b.Fatal(err)
				}
				if _, err := ReadFrame(br, 0); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			reportPercentiles(b, lat)
		})
	}
}

// BenchmarkRequest is Request/Handle round trips of 64-byte messages, one at
// a time, on a pooled stream.
func BenchmarkRequest(b *testing.B) {
	for _, tr := range transports {
		b.Run(tr, func(b *testing.B) {
			a, s := benchPair(b, tr)
			ctx := context.Background()
			msg := make([]byte, 64)
			if _, err := a.Request(ctx, s.ID(), echoProto, msg); err != nil {
				b.Fatal(err)
			}
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				if _, err := a.Request(ctx, s.ID(), echoProto, msg); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			reportPercentiles(b, lat)
		})
	}
}

// BenchmarkRequestConcurrent runs 256 requesters at once between two hosts
// (GOMAXPROCS × parallelism goroutines); ns/op is the inverse throughput.
func BenchmarkRequestConcurrent(b *testing.B) {
	for _, tr := range transports {
		b.Run(tr, func(b *testing.B) {
			a, s := benchPair(b, tr)
			ctx := context.Background()
			b.SetParallelism(max(1, 256/max(1, testingProcs())))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				msg := make([]byte, 64)
				for pb.Next() {
					if _, err := a.Request(ctx, s.ID(), echoProto, msg); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func testingProcs() int { return runtime.GOMAXPROCS(0) }
