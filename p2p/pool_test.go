package p2p

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestQUICStreamCap drives more concurrent requesters than QUIC allows
// streams on a connection, each looping, with a pool large enough to hold
// every stream: no request may starve waiting for a stream.
func TestQUICStreamCap(t *testing.T) {
	const workers, each = 300, 20
	a := newHost(t, "quic", Config{}, WithStreamPoolSize(256), WithRequestTimeout(10*time.Second))
	b := newHost(t, "quic", Config{})
	b.Handle(echoProto, echo)
	connect(t, a, b)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range each {
				if _, err := a.Request(context.Background(), b.ID(), echoProto, []byte("x")); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if open, idle := a.pool.openCount(b.ID()), a.pool.len(poolKey{b.ID(), echoProto}); open != idle || open > quicStreamCap {
		t.Fatalf("%d streams counted open, %d idle; want equal and at most %d", open, idle, quicStreamCap)
	}
}

func TestMaxStreamsPerPeer(t *testing.T) {
	const limit, n = 8, 50
	a := newHost(t, "tcp", Config{}, WithMaxStreamsPerPeer(limit))
	b := newHost(t, "tcp", Config{})
	var cur, peak atomic.Int32
	b.Handle(echoProto, func(ctx context.Context, p peer.ID, req []byte) ([]byte, error) {
		c := cur.Add(1)
		defer cur.Add(-1)
		for {
			old := peak.Load()
			if c <= old || peak.CompareAndSwap(old, c) {
				break
			}
		}
		time.Sleep(time.Millisecond)
		return echo(ctx, p, req)
	})
	b.Handle("/asp/test-other/1.0.0", echo)
	connect(t, a, b)
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range 2 * n {
		proto := echoProto
		if i%2 == 1 {
			proto = "/asp/test-other/1.0.0" // shares the per-peer cap
		}
		wg.Go(func() {
			_, err := a.Request(testCtx(t), b.ID(), proto, []byte("x"))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if p := peak.Load(); p > limit {
		t.Fatalf("%d requests in flight at once, cap %d", p, limit)
	}
	if open := a.pool.openCount(b.ID()); open > limit {
		t.Fatalf("%d streams counted open, cap %d", open, limit)
	}
}

func TestWaitForStreamTimesOut(t *testing.T) {
	a := newHost(t, "tcp", Config{}, WithMaxStreamsPerPeer(1))
	b := newHost(t, "tcp", Config{})
	release := make(chan struct{})
	b.Handle(echoProto, func(ctx context.Context, p peer.ID, req []byte) ([]byte, error) {
		if string(req) == "hold" {
			<-release
		}
		return echo(ctx, p, req)
	})
	connect(t, a, b)
	held := make(chan error, 1)
	go func() {
		_, err := a.Request(testCtx(t), b.ID(), echoProto, []byte("hold"))
		held <- err
	}()
	waitFor(t, "the only stream in use", func() bool { return a.pool.openCount(b.ID()) == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := a.Request(ctx, b.ID(), echoProto, []byte("x")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting past the deadline: got %v", err)
	}
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if resp, err := a.Request(testCtx(t), b.ID(), echoProto, []byte("y")); err != nil || string(resp) != "echo:y" {
		t.Fatalf("after the wait: %q, %v", resp, err)
	}
	if open := a.pool.openCount(b.ID()); open != 1 {
		t.Fatalf("%d streams counted open, want 1", open)
	}
}
