package p2p

import (
	"bufio"
	"context"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Automatic caps on the request streams open to one peer (see
// WithMaxStreamsPerPeer).
const (
	// quicStreamCap leaves room under QUIC's 256 streams per connection
	// (libp2p's quic-go MaxIncomingStreams) for the DHT, GossipSub,
	// identify and other protocols.
	quicStreamCap = 224
	// muxStreamCap stays under DefaultLimits' 1024 outbound streams per
	// peer.
	muxStreamCap = 896
)

// pooledStream is an outbound request stream between exchanges.
type pooledStream struct {
	s     network.Stream
	br    *bufio.Reader // buffers s; kept with it
	since time.Time     // when it went idle
}

type poolKey struct {
	peer  peer.ID
	proto protocol.ID
}

// streamPool keeps idle outbound request streams per peer and protocol, and
// caps the request streams open to each peer, as database/sql caps open
// connections: a Request finding no idle stream opens one if the peer is
// under its cap, and otherwise waits for another Request to release one.
//
// The cap matters on QUIC, where opening a stream beyond the connection's
// limit blocks until some stream is fully closed: without it, a Request
// blocked there could wait out its deadline while released streams went
// idle into the pool or to other Requests.
type streamPool struct {
	mu     sync.Mutex
	peers  map[peer.ID]*peerStreams
	closed bool
}

// peerStreams is the pool's state for one peer.
type peerStreams struct {
	// open counts request streams open or being opened to the peer: idle,
	// in use, or granted to a waiter. INVARIANT: open >= the number of
	// idle streams.
	open    int
	idle    map[protocol.ID][]*pooledStream // most recently idle last
	waiters []*waiter                       // oldest first
}

// waiter is a Request waiting for a stream to the peer.
type waiter struct {
	proto protocol.ID
	// ch receives, once, a stream for proto to reuse, or nil: a slot under
	// the cap, counted in open, to open a stream with. Buffered 1; sent to
	// under streamPool.mu when the waiter is removed from waiters.
	ch chan *pooledStream
}

func newStreamPool() streamPool {
	return streamPool{peers: make(map[peer.ID]*peerStreams)}
}

// stream returns an idle pooled stream for k (reused true) or a new one.
func (h *Host) stream(ctx context.Context, deadline time.Time, k poolKey) (ps *pooledStream, reused bool, err error) {
	ps, w := h.pool.acquire(k, h.pooledMaxIdle(), h.streamCap)
	if ps != nil {
		return ps, true, nil
	}
	if w != nil {
		if ps, err = h.pool.wait(ctx, deadline, k, w); err != nil {
			return nil, false, err
		}
		if ps != nil {
			return ps, true, nil
		}
	}
	// A slot is ours: open a stream in it.
	octx, cancel := context.WithDeadline(ctx, deadline)
	s, err := h.host.NewStream(octx, k.peer, k.proto)
	cancel()
	if err != nil {
		h.pool.discard(k.peer)
		return nil, false, err
	}
	return &pooledStream{s: s, br: bufio.NewReader(s)}, false, nil
}

// streamCap is the cap on request streams open to p.
func (h *Host) streamCap(p peer.ID) int {
	if h.cfg.maxStreams > 0 {
		return h.cfg.maxStreams
	}
	conns := h.basic.Network().ConnsToPeer(p)
	if len(conns) == 0 {
		return quicStreamCap // not known yet: assume the tighter transport
	}
	for _, c := range conns {
		if strings.HasPrefix(c.ConnState().Transport, "quic") {
			return quicStreamCap
		}
	}
	return muxStreamCap
}

// release gives a stream whose last exchange completed to a waiter, or to
// the pool, or closes it.
func (h *Host) release(k poolKey, ps *pooledStream) {
	if !h.pool.put(k, ps, h.cfg.poolSize) {
		_ = ps.s.Close()
	}
}

// drop discards a stream that failed; the caller resets it.
func (h *Host) drop(k poolKey) { h.pool.discard(k.peer) }

// acquire pops the most recently used idle stream for k, closing any idle
// for longer than maxIdle. Failing that, it returns (nil, nil) when the
// caller may open a stream (a slot is now counted for it), or a waiter to
// pass to wait when the peer is at its cap.
func (p *streamPool) acquire(k poolKey, maxIdle time.Duration, capFor func(peer.ID) int) (*pooledStream, *waiter) {
	var stale []*pooledStream
	defer func() {
		for _, ps := range stale {
			_ = ps.s.Close()
		}
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	pp := p.peers[k.peer]
	if pp == nil {
		pp = &peerStreams{idle: make(map[protocol.ID][]*pooledStream)}
		p.peers[k.peer] = pp
	}
	list := pp.idle[k.proto]
	for len(list) > 0 {
		ps := list[len(list)-1]
		list[len(list)-1] = nil
		list = list[:len(list)-1]
		if time.Since(ps.since) > maxIdle {
			stale = append(stale, ps)
			pp.open--
			continue
		}
		pp.setIdle(k.proto, list)
		return ps, nil
	}
	pp.setIdle(k.proto, list)
	if p.closed || pp.open < capFor(k.peer) {
		pp.open++
		return nil, nil
	}
	w := &waiter{proto: k.proto, ch: make(chan *pooledStream, 1)}
	pp.waiters = append(pp.waiters, w)
	return nil, w
}

// wait waits for a stream or a slot for w until ctx ends or the deadline
// passes.
func (p *streamPool) wait(ctx context.Context, deadline time.Time, k poolKey, w *waiter) (*pooledStream, error) {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	var err error
	select {
	case ps := <-w.ch:
		return ps, nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-t.C:
		err = context.DeadlineExceeded
	}
	p.mu.Lock()
	pp := p.peers[k.peer]
	for i, x := range pp.waiters {
		if x == w {
			pp.removeWaiter(i)
			p.cleanupLocked(k.peer, pp)
			p.mu.Unlock()
			return nil, err
		}
	}
	p.mu.Unlock()
	// Served as we gave up: pass it on.
	if ps := <-w.ch; ps != nil {
		if !p.put(k, ps, 1) {
			_ = ps.s.Close()
		}
	} else {
		p.discard(k.peer)
	}
	return nil, err
}

// put hands ps to the oldest waiter for the same protocol; failing that,
// when others wait for the peer, it frees ps's slot for the oldest (the
// caller closes ps); else it keeps ps idle if fewer than size are. False
// means the caller should close ps.
func (p *streamPool) put(k poolKey, ps *pooledStream, size int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	pp := p.peers[k.peer]
	if pp == nil { // dropped meanwhile (closed pool)
		return false
	}
	for i, w := range pp.waiters {
		if w.proto == k.proto {
			pp.removeWaiter(i)
			w.ch <- ps
			return true
		}
	}
	if len(pp.waiters) > 0 {
		w := pp.waiters[0]
		pp.removeWaiter(0)
		w.ch <- nil // ps's slot passes to w
		return false
	}
	if p.closed || len(pp.idle[k.proto]) >= size {
		pp.open--
		p.cleanupLocked(k.peer, pp)
		return false
	}
	ps.since = time.Now()
	pp.idle[k.proto] = append(pp.idle[k.proto], ps)
	return true
}

// discard gives up the slot of a stream that failed or was closed.
func (p *streamPool) discard(to peer.ID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pp := p.peers[to]; pp != nil {
		p.discardLocked(to, pp)
	}
}

// discardLocked passes a freed slot to the oldest waiter, or uncounts it.
// REQUIRES: p.mu.
func (p *streamPool) discardLocked(to peer.ID, pp *peerStreams) {
	if len(pp.waiters) > 0 {
		w := pp.waiters[0]
		pp.removeWaiter(0)
		w.ch <- nil
		return
	}
	pp.open--
	p.cleanupLocked(to, pp)
}

// cleanupLocked forgets a peer with nothing open or waiting. REQUIRES: p.mu.
func (p *streamPool) cleanupLocked(to peer.ID, pp *peerStreams) {
	if pp.open <= 0 && len(pp.waiters) == 0 {
		delete(p.peers, to)
	}
}

func (pp *peerStreams) removeWaiter(i int) {
	copy(pp.waiters[i:], pp.waiters[i+1:])
	pp.waiters[len(pp.waiters)-1] = nil
	pp.waiters = pp.waiters[:len(pp.waiters)-1]
}

func (pp *peerStreams) setIdle(proto protocol.ID, list []*pooledStream) {
	if len(list) == 0 {
		delete(pp.idle, proto)
		return
	}
	pp.idle[proto] = list
}

// drop removes idle streams matching f, then resets or closes them.
func (p *streamPool) drop(f func(ps *pooledStream) bool, reset bool) {
	var gone []*pooledStream
	p.mu.Lock()
	for to, pp := range p.peers {
		for proto, list := range pp.idle {
			keep := list[:0]
			for _, ps := range list {
				if f(ps) {
					gone = append(gone, ps)
					p.discardLocked(to, pp)
				} else {
					keep = append(keep, ps)
				}
			}
			clear(list[len(keep):])
			pp.setIdle(proto, keep)
		}
	}
	p.mu.Unlock()
	for _, ps := range gone {
		if reset {
			_ = ps.s.Reset()
		} else {
			_ = ps.s.Close()
		}
	}
}

// closeAll resets every idle stream and lets waiters go (to fail opening a
// stream on the closed host).
func (p *streamPool) closeAll() {
	p.mu.Lock()
	p.closed = true
	for _, pp := range p.peers {
		for _, w := range pp.waiters {
			pp.open++
			w.ch <- nil
		}
		pp.waiters = nil
	}
	p.mu.Unlock()
	p.drop(func(*pooledStream) bool { return true }, true)
}

// len is the number of idle streams pooled under k.
func (p *streamPool) len(k poolKey) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pp := p.peers[k.peer]; pp != nil {
		return len(pp.idle[k.proto])
	}
	return 0
}

// openCount is the number of request streams counted open to a peer.
func (p *streamPool) openCount(to peer.ID) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pp := p.peers[to]; pp != nil {
		return pp.open
	}
	return 0
}
