package p2p

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// placeState is what a counted stream is doing (see evict).
type placeState int

const (
	// placeOpened: no byte of its first frame yet (FrameStartTimeout
	// bounds the wait).
	placeOpened placeState = iota
	// placeIdle: between frames, its last request answered and no byte of
	// the next arrived. An idle stream holds no right to its place.
	placeIdle
	// placeInFrame: a frame in progress. The stall deadlines bound how long
	// one frame may take, not how often frames follow one another.
	placeInFrame
	// placeServing: a whole request read; the handler runs or its
	// response is being written. Never evicted: the node decides how long
	// this lasts.
	placeServing
)

// place is one counted stream's place in the shared budget. Its fields are
// guarded by the admission's mu.
type place struct {
	peer    peer.ID
	reset   func()
	state   placeState
	since   time.Time // opened, or its last response written
	evicted bool
}

// eviction is the stream that gave way to a new one: its peer, and whether
// it was in the middle of a frame (a strike against that peer: Request
// writes each frame whole, so only a peer sending frames slowly, or not at
// all, is caught there).
type eviction struct {
	peer    peer.ID
	inFrame bool
}

// maxEvictAsks bounds how many peers one eviction asks the Protected
// function about.
const maxEvictAsks = 4

// evict makes room for a new stream from p, which is within its own share
// while the shared budget is full: another peer's stream that is not being
// served gives way. Preferred, in order: a stream idle between frames over
// one not between frames; a stream of the peer holding the most places;
// the stream waiting longest since it was opened or last answered. Streams
// of protected peers are never evicted. evict returns p's place and the
// stream evicted (nil when room was made meanwhile), or a nil place when no
// stream can give way.
func (a *admission) evict(p peer.ID, reset func()) (*place, *eviction) {
	var spared map[peer.ID]bool
	for range maxEvictAsks {
		a.mu.Lock()
		if a.check(p) == "" { // room was made meanwhile
			pl := a.take(p, reset)
			a.mu.Unlock()
			return pl, nil
		}
		v := a.candidate(p, spared)
		a.mu.Unlock()
		if v == nil {
			return nil, nil
		}
		if a.protected != nil && a.protected(v.peer) {
			if spared == nil {
				spared = make(map[peer.ID]bool)
			}
			spared[v.peer] = true
			continue
		}
		a.mu.Lock()
		if v.evicted || v.state == placeServing || a.check(p) != RefusedSharedBudget {
			a.mu.Unlock()
			continue // it moved on meanwhile; look again
		}
		a.release(v)
		v.evicted = true
		ev := &eviction{peer: v.peer, inFrame: v.state == placeInFrame}
		pl := a.take(p, reset)
		a.mu.Unlock()
		v.reset()
		return pl, ev
	}
	return nil, nil
}

// candidate is the stream evict prefers, of a peer other than p and those
// spared, or nil. Called with mu held.
func (a *admission) candidate(p peer.ID, spared map[peer.ID]bool) *place {
	var best *place
	for pl := range a.places {
		if pl.peer == p || pl.state == placeServing || spared[pl.peer] {
			continue
		}
		if best == nil || a.before(pl, best) {
			best = pl
		}
	}
	return best
}

// before reports whether x should give way before y.
func (a *admission) before(x, y *place) bool {
	if xi, yi := x.state == placeIdle, y.state == placeIdle; xi != yi {
		return xi
	}
	if nx, ny := a.peers[x.peer], a.peers[y.peer]; nx != ny {
		return nx > ny
	}
	return x.since.Before(y.since)
}

// reading marks pl as receiving a frame; a nil place is ignored.
func (a *admission) reading(pl *place) {
	if pl == nil {
		return
	}
	a.mu.Lock()
	pl.state = placeInFrame
	a.mu.Unlock()
}

// serving marks pl as being served, and reports false if it was evicted
// (the request is then not served: the stream is reset). A nil place is
// always served.
func (a *admission) serving(pl *place) bool {
	if pl == nil {
		return true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	pl.state = placeServing
	return !pl.evicted
}

// idle marks pl as answered and waiting for its next frame; a nil place is
// ignored.
func (a *admission) idle(pl *place) {
	if pl == nil {
		return
	}
	now := time.Now()
	a.mu.Lock()
	pl.state, pl.since = placeIdle, now
	a.mu.Unlock()
}
