package p2p

import (
	"bufio"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
)

// holdBusyStreams opens n session streams from h to victim and keeps each
// one in use without ever stalling: a valid 1-byte request, answered, then
// a pause well inside the idle deadline (between frames), or, with
// inFrame, the request's length prefix, a pause well inside the stall
// deadline, then its byte (in the middle of a frame). A stream that is
// reset is opened again, until ctx ends.
func holdBusyStreams(ctx context.Context, wg *sync.WaitGroup, h *Host, victim peer.ID, n int, inFrame bool) {
	for range n {
		wg.Go(func() {
			for ctx.Err() == nil {
				s, err := h.Host().NewStream(ctx, victim, SessionProtocol)
				if err != nil {
					pause(ctx, 100*time.Millisecond)
					continue
				}
				stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
				br := bufio.NewReader(s)
				for ctx.Err() == nil {
					if inFrame {
						if _, err := s.Write([]byte{1}); err != nil {
							break
						}
						pause(ctx, 2*time.Second) // FrameStallFloor is 5 s
						if _, err := s.Write([]byte("x")); err != nil {
							break
						}
					} else if WriteFrame(s, []byte("x")) != nil {
						break
					}
					if _, err := ReadFrame(br, MaxFrameSize); err != nil {
						break
					}
					if !inFrame {
						pause(ctx, 3*time.Second) // UnprotectedIdleTimeout is 15 s
					}
				}
				stop()
				_ = s.Reset()
			}
		})
	}
}

// TestBusyStreamsGiveWay: hostile identities hold the whole shared budget
// with streams they keep in use, never stalling: valid requests every few
// seconds (idle between frames), or frames sent slowly but within the stall
// deadline (in a frame). A fresh peer is still served: each of its
// requests within a generous bound, the hostile streams giving way
// (asp_p2p_streams_evicted_total).
func TestBusyStreamsGiveWay(t *testing.T) {
	t.Run("between-frames", func(t *testing.T) { testBusyStreamsGiveWay(t, false) })
	t.Run("in-frame", func(t *testing.T) { testBusyStreamsGiveWay(t, true) })
}

func testBusyStreamsGiveWay(t *testing.T, inFrame bool) {
	const (
		budget     = 128 // the session protocol's inbound streams, all peers
		hostiles   = 2
		perHostile = budget / 4 // each one's share: the whole shared half
	)
	reg := prometheus.NewRegistry()
	victim := newHost(t, "tcp", Config{}, WithRegisterer(reg), WithLimiter(sessionLimiter(t, budget)))
	victim.Handle(SessionProtocol, echo)
	fresh := newHost(t, "tcp", Config{}, WithStreamPoolSize(0))
	connect(t, fresh, victim)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	attack, stopAttack := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopAttack(); wg.Wait() }()
	for range hostiles {
		h := newHost(t, "tcp", Config{})
		connect(t, h, victim)
		holdBusyStreams(attack, &wg, h, victim.ID(), perHostile, inFrame)
	}
	for sessionStreamsIn(victim) < budget/2 {
		if ctx.Err() != nil {
			t.Fatalf("hostile streams never held the shared half: %d", sessionStreamsIn(victim))
		}
		pause(ctx, 10*time.Millisecond)
	}

	// Each request within a few attempts (a stream gives way unless all
	// are being served at once) and a generous time bound.
	const attempts = 5
	for i := range 20 {
		want := "echo:" + string([]byte{'a' + byte(i)})
		bound := time.Now().Add(30 * time.Second)
		for n := 1; ; n++ {
			rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
			resp, err := fresh.Request(rctx, victim.ID(), SessionProtocol, []byte(want[5:]))
			rcancel()
			if err == nil && string(resp) == want {
				break
			}
			if err == nil || n == attempts || time.Now().After(bound) || ctx.Err() != nil {
				t.Fatalf("fresh peer's request %d with the shared half held, attempt %d: %q, %v (evicted %v, refused %v)", i, n, resp, err,
					counterValue(victim.metrics.evicted.WithLabelValues(SessionProtocol)),
					counterValue(victim.metrics.streamRefused.WithLabelValues(SessionProtocol, RefusedSharedBudget)))
			}
			pause(ctx, 50*time.Millisecond)
		}
	}
	evicted := counterValue(victim.metrics.evicted.WithLabelValues(SessionProtocol))
	t.Logf("fresh peer served 20 of 20; %v hostile streams evicted", evicted)
	if evicted == 0 {
		t.Fatal("no stream evicted")
	}
	if n, err := seriesCount(reg, "asp_p2p_streams_evicted_total"); err != nil || n == 0 {
		t.Fatalf("asp_p2p_streams_evicted_total not registered: %d, %v", n, err)
	}
	if victim.Gater().CoolingOff(fresh.ID()) {
		t.Fatal("the fresh peer was cooled off")
	}
}
