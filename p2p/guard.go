package p2p

import (
	"bufio"
	"errors"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
)

// Deadlines of frames read by Handle (see the package documentation,
// "Stream budgets and stalls").
const (
	// FrameStartTimeout is how long a new inbound stream may wait before
	// the first byte of its first frame. Request writes its frame as soon
	// as the stream is open, so only a peer holding streams open waits.
	FrameStartTimeout = 5 * time.Second

	// FrameStallFloor is how long a frame may take, from its first byte,
	// whatever its length; MinFrameRate then extends the deadline.
	FrameStallFloor = 5 * time.Second

	// MinFrameRate is the rate, in bytes per second, below which a frame
	// in progress stalls: after its first byte, a frame that has received
	// b bytes must receive more before FrameStallFloor + b/MinFrameRate.
	// A 1 MiB frame may thus take up to 21 s.
	MinFrameRate = 64 << 10

	// UnprotectedIdleTimeout caps the wait between frames on streams of
	// peers without live business (see WithProtected); such a peer's idle
	// streams hold places in the shared budget until a newcomer needs one.
	UnprotectedIdleTimeout = 15 * time.Second
)

// Scoring of peers that misbehave on served streams.
const (
	// StrikeLimit is how many strikes (stalled, oversized or malformed
	// frames, or streams left silent) a peer may collect before it is
	// cooled off. Strikes are forgotten StrikeWindow after the last one.
	StrikeLimit = 8

	// StrikeWindow is how long a peer's strikes are remembered after its
	// last one.
	StrikeWindow = time.Minute

	// CoolOff is how long the Gater refuses a peer that reached
	// StrikeLimit, after its connections are closed.
	CoolOff = 10 * time.Minute
)

// Reasons a stream is refused, as the "reason" label of
// asp_p2p_streams_refused_total.
const (
	// RefusedPeerBudget: the peer, without live business, already holds
	// its share of the protocol's streams.
	RefusedPeerBudget = "peer"
	// RefusedSharedBudget: peers without live business already hold, all
	// together, their share of the protocol's streams.
	RefusedSharedBudget = "shared"
)

// streamBudget is how many inbound streams of one protocol Handle serves
// at once for peers the Protected function does not vouch for: all such
// peers together (shared) and each one (perPeer). Protected peers are
// bounded by the resource manager alone (its per-protocol-per-peer limit),
// so the rest of the protocol's inbound limit is theirs.
type streamBudget struct {
	shared, perPeer int
}

// budgetFor derives proto's budget from the resource manager's limits: half
// of the protocol's inbound streams for unprotected peers together, a
// quarter for each one.
func budgetFor(l rcmgr.Limiter, proto protocol.ID) streamBudget {
	in := l.GetProtocolLimits(proto).GetStreamLimit(network.DirInbound)
	return streamBudget{shared: max(in/2, 1), perPeer: max(in/4, 1)}
}

// admission counts the streams one protocol's handler serves for peers
// without live business, and picks which of them gives way when the shared
// budget is full (see evict).
type admission struct {
	budget    streamBudget
	protected func(peer.ID) bool // nil: nobody is

	mu     sync.Mutex
	shared int
	peers  map[peer.ID]int
	places map[*place]struct{}
}

func newAdmission(b streamBudget, protected func(peer.ID) bool) *admission {
	return &admission{budget: b, protected: protected, peers: make(map[peer.ID]int), places: make(map[*place]struct{})}
}

// admit decides whether a new stream from p is served; reset resets it. A
// stream within the unprotected budget is counted against it and gets a
// place (the caller reports its state on it and calls done when the stream
// ends). Beyond it, a protected peer is admitted uncounted (nil place); a
// peer within its own share takes the place of another peer's stream that
// is not being served, evicting it (ev says which); anyone else is
// refused, with the reason.
func (a *admission) admit(p peer.ID, reset func()) (pl *place, ev *eviction, refused string) {
	a.mu.Lock()
	refused = a.check(p)
	if refused == "" {
		pl = a.take(p, reset)
	}
	a.mu.Unlock()
	if refused == "" {
		return pl, nil, ""
	}
	// Asked only beyond the budget, so the hot path never calls out.
	if a.protected != nil && a.protected(p) {
		return nil, nil, ""
	}
	if refused == RefusedSharedBudget {
		if pl, ev = a.evict(p, reset); pl != nil {
			return pl, ev, ""
		}
	}
	return nil, nil, refused
}

// check reports why a new stream from p does not fit the budget, or "".
func (a *admission) check(p peer.ID) string {
	switch {
	case a.peers[p] >= a.budget.perPeer:
		return RefusedPeerBudget
	case a.shared >= a.budget.shared:
		return RefusedSharedBudget
	}
	return ""
}

// take counts a new stream from p and returns its place.
func (a *admission) take(p peer.ID, reset func()) *place {
	pl := &place{peer: p, reset: reset, since: time.Now()}
	a.places[pl] = struct{}{}
	a.peers[p]++
	a.shared++
	return pl
}

// release uncounts pl.
func (a *admission) release(pl *place) {
	delete(a.places, pl)
	a.shared--
	if n := a.peers[pl.peer] - 1; n > 0 {
		a.peers[pl.peer] = n
	} else {
		delete(a.peers, pl.peer)
	}
}

// done uncounts a stream admitted with a place, unless it was evicted (and
// uncounted then). A nil place is ignored.
func (a *admission) done(pl *place) {
	if pl == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !pl.evicted {
		a.release(pl)
	}
}

// isProtected reports whether the Host's Protected function vouches for p.
func (h *Host) isProtected(p peer.ID) bool {
	return h.cfg.protected != nil && h.cfg.protected(p)
}

// strikeRecord is one peer's misbehaviour, forgotten StrikeWindow after
// last.
type strikeRecord struct {
	n    int
	last time.Time
}

// strikes scores peers by their misbehaviour on served streams.
type strikes struct {
	mu    sync.Mutex
	peers map[peer.ID]*strikeRecord
}

// add records a strike against p at now and reports whether p has reached
// StrikeLimit (its record is then cleared).
func (s *strikes) add(p peer.ID, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.peers == nil {
		s.peers = make(map[peer.ID]*strikeRecord)
	}
	r := s.peers[p]
	if r == nil || now.Sub(r.last) > StrikeWindow {
		r = &strikeRecord{}
		s.peers[p] = r
	}
	r.n++
	r.last = now
	if r.n < StrikeLimit {
		return false
	}
	delete(s.peers, p)
	return true
}

// prune forgets records older than StrikeWindow.
func (s *strikes) prune(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for p, r := range s.peers {
		if now.Sub(r.last) > StrikeWindow {
			delete(s.peers, p)
		}
	}
}

// strike records a misbehaviour by p; at StrikeLimit, unless p is
// protected, the Gater refuses p for CoolOff and its connections are
// closed.
func (h *Host) strike(p peer.ID) {
	now := time.Now()
	if !h.strikes.add(p, now) {
		return
	}
	if h.isProtected(p) {
		h.cfg.logger.Warn("peer with live business misbehaves on its streams; kept", "peer", p)
		return
	}
	if h.gater.coolOff(p, now.Add(CoolOff)) {
		h.metrics.cooledOff.Inc()
		h.cfg.logger.Warn("peer cooled off: stalled or malformed frames", "peer", p, "for", CoolOff)
	}
	_ = h.basic.Network().ClosePeer(p)
}

// errStalled is returned by readRequest, wrapped in a timeout error's
// place, when a frame started but did not arrive at MinFrameRate.
var errStalled = errors.New("p2p: frame stalled")

// readRequest reads the next request frame of a served stream. wait bounds
// the time to its first byte; from there the frame must arrive within
// FrameStallFloor plus one second per MinFrameRate bytes received. A
// timeout before the first byte is returned as the stream's timeout error;
// one after it as errStalled. began, if not nil, is called at the first
// byte.
func readRequest(s network.Stream, br *bufio.Reader, wait time.Duration, began func()) ([]byte, error) {
	_ = s.SetReadDeadline(time.Now().Add(wait))
	if _, err := br.Peek(1); err != nil {
		return nil, err
	}
	if began != nil {
		began()
	}
	start := time.Now()
	// The deadline moves only when a read would wait: a frame already
	// buffered (most requests) costs no deadline timer of its own.
	if !prefixBuffered(br) {
		_ = s.SetReadDeadline(start.Add(FrameStallFloor))
	}
	n, err := readFrameHeader(br, MaxFrameSize)
	if err != nil {
		return nil, stalledIfTimeout(err)
	}
	req, err := readPayload(br, n, func(got int) {
		if br.Buffered() >= n-got {
			return
		}
		rate := time.Duration(got) * time.Second / MinFrameRate
		_ = s.SetReadDeadline(start.Add(FrameStallFloor + rate))
	})
	if err != nil {
		return nil, stalledIfTimeout(err)
	}
	return req, nil
}

// prefixBuffered reports whether br holds a whole length prefix (or enough
// bytes to refuse it).
func prefixBuffered(br *bufio.Reader) bool {
	b, _ := br.Peek(min(br.Buffered(), maxVarintLen+1))
	for _, c := range b {
		if c < 0x80 {
			return true
		}
	}
	return len(b) > maxVarintLen
}

func stalledIfTimeout(err error) error {
	if isTimeout(err) {
		return errStalled
	}
	return err
}

// pooledMaxIdle is how long a pooled outbound stream may stay idle before it
// is closed rather than reused: half the wait the serving side allows
// between frames (at most UnprotectedIdleTimeout for a peer that has no
// business with us yet), so that it rarely has to reset them.
func (h *Host) pooledMaxIdle() time.Duration {
	return min(h.cfg.idleTimeout, UnprotectedIdleTimeout) / 2
}
