package p2p

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/prometheus/client_golang/prometheus"
)

// sessionLimiter is DefaultLimits with the session protocol's inbound
// streams, all peers together, set to n: the whole budget a few hostile
// peers would have to fill.
func sessionLimiter(t testing.TB, n int) rcmgr.Limiter {
	t.Helper()
	def := DefaultLimits()
	cfg := def.ToPartialLimitConfig()
	if cfg.Protocol == nil {
		cfg.Protocol = make(map[protocol.ID]rcmgr.ResourceLimits)
	}
	l := cfg.Protocol[SessionProtocol]
	l.StreamsInbound = rcmgr.LimitVal(n)
	cfg.Protocol[SessionProtocol] = l
	return rcmgr.NewFixedLimiter(cfg.Build(def))
}

// holdSilentStreams opens n session streams from h to victim, each sending a
// header that announces a 1 MiB frame and then nothing; a stream that is
// reset (or cannot be opened) is opened again, until ctx ends.
func holdSilentStreams(ctx context.Context, wg *sync.WaitGroup, h *Host, victim peer.ID, n int) {
	header := appendUvarint(nil, MaxFrameSize)
	for range n {
		wg.Go(func() {
			for ctx.Err() == nil {
				s, err := h.Host().NewStream(ctx, victim, SessionProtocol)
				if err != nil {
					pause(ctx, 100*time.Millisecond)
					continue
				}
				stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
				if _, err := s.Write(header); err == nil {
					_, _ = s.Read(make([]byte, 1)) // until reset
				}
				stop()
				_ = s.Reset()
				pause(ctx, 50*time.Millisecond)
			}
		})
	}
}

func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func sessionStreamsIn(h *Host) int {
	var n int
	_ = h.rm.ViewProtocol(SessionProtocol, func(s network.ProtocolScope) error {
		n = s.Stat().NumStreamsInbound
		return nil
	})
	return n
}

func heapInuse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestSilentStreamsDoNotLockOut: hostile peers hold as many silent session
// streams as they can (a header announcing 1 MiB, then nothing, reopened
// when reset). A peer with live business is served throughout; a fresh
// honest peer is served, hostile streams giving way to it; every hostile
// peer is cooled off; the victim's heap does not grow by the frames
// announced; the metrics show it all.
func TestSilentStreamsDoNotLockOut(t *testing.T) {
	const (
		budget     = 128 // the session protocol's inbound streams, all peers
		hostiles   = 4
		perHostile = 40 // 4 × 40 streams: more than the whole budget
	)
	reg := prometheus.NewRegistry()
	partner := newHost(t, "tcp", Config{}, WithStreamPoolSize(0))
	victim := newHost(t, "tcp", Config{}, WithRegisterer(reg), WithLimiter(sessionLimiter(t, budget)),
		WithProtected(func(p peer.ID) bool { return p == partner.ID() }))
	victim.Handle(SessionProtocol, func(_ context.Context, _ peer.ID, req []byte) ([]byte, error) {
		return append([]byte("ok:"), req...), nil
	})
	fresh := newHost(t, "tcp", Config{}, WithStreamPoolSize(0))
	connect(t, partner, victim)
	connect(t, fresh, victim)
	var bad []*Host
	for range hostiles {
		h := newHost(t, "tcp", Config{})
		connect(t, h, victim)
		bad = append(bad, h)
	}
	base := heapInuse()

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	attack, stopAttack := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopAttack(); wg.Wait() }()
	for _, h := range bad {
		holdSilentStreams(attack, &wg, h, victim.ID(), perHostile)
	}
	// The hostile peers hold streams: as many as the budget lets them.
	for sessionStreamsIn(victim) < budget/3 {
		if ctx.Err() != nil {
			t.Fatalf("hostile streams never held: %d", sessionStreamsIn(victim))
		}
		pause(ctx, 10*time.Millisecond)
	}
	held := sessionStreamsIn(victim)
	// Memory grows by what arrived, not by what was announced.
	grown := int64(heapInuse()) - int64(base)
	t.Logf("heap in use grew by %d KiB with %d silent streams held", grown>>10, held)
	if grown > 32<<20 {
		t.Errorf("heap grew by %d MiB with %d silent streams held", grown>>20, held)
	}

	// The partner is served, hostile streams or not: each request within
	// a generous bound (streams the victim is refusing pass through the
	// protocol's limit for a moment, so one attempt may meet it full).
	for i := range 10 {
		want := "ok:" + string([]byte{byte(i)})
		bound := time.Now().Add(30 * time.Second)
		for {
			rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
			resp, err := partner.Request(rctx, victim.ID(), SessionProtocol, []byte{byte(i)})
			rcancel()
			if err == nil && string(resp) == want {
				break
			}
			if err == nil || time.Now().After(bound) {
				t.Fatalf("partner request %d under attack: %q, %v", i, resp, err)
			}
			pause(ctx, 10*time.Millisecond)
		}
	}

	// A fresh peer gets through (hostile streams give way to it, or their
	// peers are cooled off) within a generous bound, the attack going on.
	for i := 0; i < 10; {
		rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := fresh.Request(rctx, victim.ID(), SessionProtocol, []byte{byte(i)})
		rcancel()
		if err == nil {
			i++
			continue
		}
		if ctx.Err() != nil {
			t.Fatalf("fresh peer locked out: %v", err)
		}
		pause(ctx, 50*time.Millisecond)
	}

	// Every hostile peer ends cooled off: its streams stalled, or were
	// evicted in the middle of a frame.
	for _, h := range bad {
		for !victim.Gater().CoolingOff(h.ID()) {
			if ctx.Err() != nil {
				t.Fatalf("hostile peer %s never cooled off", h.ID())
			}
			pause(ctx, 10*time.Millisecond)
		}
	}
	refused := counterValue(victim.metrics.streamRefused.WithLabelValues(SessionProtocol, RefusedPeerBudget)) +
		counterValue(victim.metrics.streamRefused.WithLabelValues(SessionProtocol, RefusedSharedBudget))
	stalled := counterValue(victim.metrics.stalled.WithLabelValues(SessionProtocol))
	evicted := counterValue(victim.metrics.evicted.WithLabelValues(SessionProtocol))
	cooled := counterValue(victim.metrics.cooledOff)
	t.Logf("held %d streams; refused %v, stalled %v, evicted %v, cooled off %v", held, refused, stalled, evicted, cooled)
	if refused == 0 || stalled+evicted == 0 || cooled == 0 {
		t.Fatalf("metrics: refused %v, stalled %v, evicted %v, cooled off %v; want refused, cooled off and stalled or evicted > 0", refused, stalled, evicted, cooled)
	}
	for _, name := range []string{"asp_p2p_streams_refused_total", "asp_p2p_frames_stalled_total", "asp_p2p_peers_cooled_off_total"} {
		if n, err := seriesCount(reg, name); err != nil || n == 0 {
			t.Fatalf("%s not registered: %d, %v", name, n, err)
		}
	}
	if victim.Gater().CoolingOff(partner.ID()) || victim.Gater().CoolingOff(fresh.ID()) {
		t.Fatal("an honest peer was cooled off")
	}
	var coolingOff int
	for _, h := range bad {
		if victim.Gater().CoolingOff(h.ID()) {
			coolingOff++
		}
	}
	if coolingOff == 0 {
		t.Fatal("no hostile peer is cooling off")
	}
}

// TestStalledFrameStrikes: a frame that starts and stops is reset within
// FrameStallFloor, not the idle timeout; at StrikeLimit the peer is
// disconnected and refused.
func TestStalledFrameStrikes(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := newHost(t, "tcp", Config{})
	b := newHost(t, "tcp", Config{}, WithRegisterer(reg), WithIdleTimeout(time.Hour))
	b.Handle(SessionProtocol, echo)
	connect(t, a, b)
	ctx := testCtx(t)
	errs := make(chan error, StrikeLimit)
	for i := range StrikeLimit {
		go func() {
			s, err := a.Host().NewStream(ctx, b.ID(), SessionProtocol)
			if err != nil {
				errs <- fmt.Errorf("stream %d: %w", i, err)
				return
			}
			defer s.Reset()
			// Half a frame, or half a length prefix, then silence.
			half := append(appendUvarint(nil, 100), "half"...)
			if i%2 == 1 {
				half = appendUvarint(nil, 1000)[:1]
			}
			if _, err := s.Write(half); err != nil {
				errs <- err
				return
			}
			_ = s.SetReadDeadline(time.Now().Add(time.Minute))
			if _, err := s.Read(make([]byte, 1)); !errors.Is(err, network.ErrReset) {
				errs <- fmt.Errorf("stalled frame %d: got %v, want a reset", i, err)
				return
			}
			errs <- nil
		}()
	}
	for range StrikeLimit {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "cooled off", func() bool { return counterValue(b.metrics.cooledOff) == 1 })
	if got := counterValue(b.metrics.stalled.WithLabelValues(SessionProtocol)); got != StrikeLimit {
		t.Fatalf("%v stalled frames counted, want %d", got, StrikeLimit)
	}
	if !b.Gater().CoolingOff(a.ID()) {
		t.Fatal("peer not cooling off")
	}
	waitFor(t, "disconnected", func() bool {
		return b.Host().Network().Connectedness(a.ID()) != network.Connected
	})
	if _, err := a.Request(ctx, b.ID(), SessionProtocol, []byte("x")); err == nil {
		t.Fatal("a cooled-off peer was served")
	}
}

// TestAdmission: peers without live business share half of a protocol's
// inbound streams, each at most a quarter; a protected peer is admitted
// beyond, and the Protected function is asked only then.
func TestAdmission(t *testing.T) {
	partner, a, b, c := peer.ID("partner"), peer.ID("a"), peer.ID("b"), peer.ID("c")
	var asked int
	adm := newAdmission(budgetFor(sessionLimiter(t, 16), SessionProtocol), func(p peer.ID) bool {
		asked++
		return p == partner
	})
	if adm.budget != (streamBudget{shared: 8, perPeer: 4}) {
		t.Fatalf("budget %+v, want shared 8, 4 per peer", adm.budget)
	}
	places := map[peer.ID][]*place{}
	admit := func(p peer.ID, wantCounted bool, wantRefused string) {
		t.Helper()
		pl, ev, refused := adm.admit(p, func() { t.Fatalf("%s's new stream evicted a stream", p) })
		if (pl != nil) != wantCounted || ev != nil || refused != wantRefused {
			t.Fatalf("%s: counted %v evicted %v refused %q; want %v, none, %q", p, pl != nil, ev, refused, wantCounted, wantRefused)
		}
		if pl != nil {
			places[p] = append(places[p], pl)
			adm.serving(pl) // being served: never evicted
		}
	}
	for range 4 {
		admit(a, true, "")
	}
	admit(a, false, RefusedPeerBudget)
	admit(partner, true, "")
	if asked != 1 {
		t.Fatalf("Protected asked %d times within the budget, want only for the refusal", asked)
	}
	for range 3 {
		admit(b, true, "")
	}
	admit(c, false, RefusedSharedBudget)
	for range 10 {
		admit(partner, false, "") // beyond the shared half: protected room
	}
	adm.done(places[a][0])
	admit(c, true, "")
	adm.done(places[c][0])
	for _, pl := range places[a][1:] {
		adm.done(pl)
	}
	if adm.shared != 4 || len(adm.peers) != 2 || len(adm.places) != 4 {
		t.Fatalf("after done: shared %d, places %d, peers %v", adm.shared, len(adm.places), adm.peers)
	}
}

// TestEviction: with the shared budget full, a new stream within its
// peer's share takes the place of another peer's stream that is not being
// served: idle between frames before in a frame, of the peer holding most
// places, waiting longest. Streams being served, the newcomer's own and
// protected peers' are never evicted.
func TestEviction(t *testing.T) {
	partner := peer.ID("partner")
	adm := newAdmission(streamBudget{shared: 6, perPeer: 3}, func(p peer.ID) bool { return p == partner })
	reset := map[*place]int{}
	var order []string
	open := func(p peer.ID, name string) *place {
		t.Helper()
		var pl *place
		pl, _, refused := adm.admit(p, func() { order = append(order, name); reset[pl]++ })
		if pl == nil || refused != "" {
			t.Fatalf("%s refused: %q", name, refused)
		}
		return pl
	}
	// a: 3 places; b: 2; partner: 1 (counted: the budget had room).
	a1, a2, a3 := open("a", "a1"), open("a", "a2"), open("a", "a3")
	b1, b2 := open("b", "b1"), open("b", "b2")
	p1 := open(partner, "p1")
	// Answered at these times (set here: the clock may not tell calls
	// apart).
	t0 := time.Now()
	idle := func(pl *place, at int) {
		adm.idle(pl)
		pl.since = t0.Add(time.Duration(at) * time.Second)
	}
	adm.serving(a1) // being served
	idle(p1, 0)     // idle longest of all, but protected
	idle(b1, 1)     // idle, but b holds fewer than a
	idle(a2, 2)     // idle
	idle(a3, 3)
	adm.reading(a3) // a frame started: in a frame again
	idle(b2, 4)

	evicts := func(p peer.ID, want string, inFrame bool) {
		t.Helper()
		n := len(order)
		pl, ev, refused := adm.admit(p, func() {})
		if pl == nil || ev == nil || refused != "" || len(order) != n+1 || order[n] != want ||
			ev.peer != peer.ID(want[:1]) || ev.inFrame != inFrame {
			t.Fatalf("new stream of %s: evicted %+v refused %q, reset %v; want %s reset, in a frame %v", p, ev, refused, order[n:], want, inFrame)
		}
		adm.serving(pl)
	}
	evicts("c", "a2", false) // idle, of the peer holding most
	evicts("c", "b1", false) // idle; a and b hold 2 each, the partner 1
	evicts("c", "b2", false) // idle; b and the partner hold 1 each, p1 spared
	evicts("d", "a3", true)  // in a frame: no idle stream is left but the partner's
	// Left: a1 being served, p1 protected, c's three (c at its share), d's
	// one being served: nothing gives way to d or e.
	for _, p := range []peer.ID{"d", "e"} {
		if pl, ev, refused := adm.admit(p, func() {}); pl != nil || ev != nil || refused != RefusedSharedBudget {
			t.Fatalf("%s: place %v evicted %+v refused %q; want refused %q", p, pl != nil, ev, refused, RefusedSharedBudget)
		}
	}
	// An evicted stream's end uncounts nothing; it is not served.
	for pl, n := range reset {
		if n != 1 || !pl.evicted || adm.serving(pl) {
			t.Fatalf("evicted %s: reset %d times, served %v", pl.peer, n, !pl.evicted)
		}
		adm.done(pl)
	}
	if adm.shared != 6 || adm.peers["a"] != 1 || adm.peers["c"] != 3 || adm.peers["d"] != 1 || adm.peers[partner] != 1 {
		t.Fatalf("after evictions: shared %d, peers %v", adm.shared, adm.peers)
	}
}
