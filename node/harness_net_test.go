package node

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// The node harness's network and scheduler: every session-protocol request
// a node sends waits in one queue until the transcript delivers it (the
// destination node's handler runs and its answer goes back to the blocked
// sender) or drops it (the sender sees a transport error). The harness
// counts the goroutines it started (operations, handlers, the node's spawned
// background work); after each command it waits until every one of them has
// finished or is parked in the queue. Nothing is timed: the network moves
// only when the transcript says so, the clock only on tick.

// errDropped is what the sender of a dropped request sees.
var errDropped = errors.New("harness: stream reset (request dropped)")

// errCrashed is what a request to or from a crashed node sees.
var errCrashed = errors.New("harness: connection refused (node crashed)")

// quiesceTimeout bounds the wait for a step to settle: reaching it means a
// goroutine is blocked outside the queue (a lock held by a parked request,
// a real-time timer), which is a bug of the transcript or of the engine.
const quiesceTimeout = 60 * time.Second

type hnet struct {
	mu       sync.Mutex
	cond     *sync.Cond
	active   int // tracked goroutines running, not parked in the queue
	timedOut bool
	closed   bool // the test is over: every request fails at once
	queue    []*hmsg
	// held are the nodes' background functions (Node.spawn) not yet
	// started: each starts only once everything else has settled, one at
	// a time, so that their requests queue in one order every run.
	held   []func()
	events []string // what happened since the last command's output
	nodes  map[string]*hnode
	byPeer map[peer.ID]string
	alias  *aliases
}

// hmsg is one request in flight.
type hmsg struct {
	from, to string // node names
	src      *hinst // the sending node instance
	req      []byte
	desc     string
	reply    chan hreply // buffered: waking the sender never blocks
}

type hreply struct {
	resp []byte
	err  error
}

func newHnet() *hnet {
	h := &hnet{nodes: map[string]*hnode{}, byPeer: map[peer.ID]string{}, alias: newAliases()}
	h.cond = sync.NewCond(&h.mu)
	return h
}

// htransport is one node instance's transport.
type htransport struct {
	h    *hnet
	inst *hinst
}

// RoundTrip queues req and parks the caller until it is delivered or
// dropped. The context's deadline is not watched: a request waits as long
// as the transcript leaves it queued.
func (t htransport) RoundTrip(_ context.Context, to peer.ID, req []byte) ([]byte, error) {
	h := t.h
	h.mu.Lock()
	dst, ok := h.byPeer[to]
	if !ok || h.closed || t.inst.dead || h.nodes[dst].cur == nil {
		h.mu.Unlock()
		return nil, errCrashed
	}
	m := &hmsg{from: t.inst.name, to: dst, src: t.inst, req: req, reply: make(chan hreply, 1)}
	m.desc = fmt.Sprintf("%s→%s %s", m.from, m.to, harnessDescribeReq(req, h.alias))
	h.queue = append(h.queue, m)
	h.eventf("queued %s", m.desc)
	h.park()
	h.mu.Unlock()
	r := <-m.reply
	return r.resp, r.err
}

// eventf records a line of the current command's output.
// REQUIRES: h.mu.
func (h *hnet) eventf(format string, args ...any) {
	h.events = append(h.events, fmt.Sprintf(format, args...))
}

// park marks the calling tracked goroutine as waiting in the queue.
// REQUIRES: h.mu.
func (h *hnet) park() {
	h.active--
	if h.active < 0 {
		panic("harness: a goroutine the harness does not track sent a request")
	}
	h.cond.Broadcast()
}

// wake hands m its answer; its sender runs again.
// REQUIRES: h.mu.
func (h *hnet) wake(m *hmsg, r hreply) {
	h.active++
	m.reply <- r
}

// goTracked runs f in a goroutine the harness waits for (an operation a
// command starts).
func (h *hnet) goTracked(f func()) {
	h.mu.Lock()
	h.active++
	h.mu.Unlock()
	go func() {
		defer h.exit()
		f()
	}()
}

// spawnHeld is the nodes' spawn option: f waits until the step has
// settled (quiesce starts it).
func (h *hnet) spawnHeld(f func()) {
	h.mu.Lock()
	h.held = append(h.held, f)
	h.mu.Unlock()
}

func (h *hnet) exit() {
	h.mu.Lock()
	h.active--
	h.cond.Broadcast()
	h.mu.Unlock()
}

// quiesce waits until every tracked goroutine has finished or is parked in
// the queue.
func (h *hnet) quiesce(t testing.TB) {
	t.Helper()
	timer := time.AfterFunc(quiesceTimeout, func() {
		h.mu.Lock()
		h.timedOut = true
		h.cond.Broadcast()
		h.mu.Unlock()
	})
	defer timer.Stop()
	h.mu.Lock()
	for !h.timedOut {
		if h.active > 0 {
			h.cond.Wait()
			continue
		}
		if len(h.held) == 0 {
			break
		}
		f := h.held[0]
		h.held = h.held[1:]
		h.active++
		go func() {
			defer h.exit()
			f()
		}()
	}
	stuck := h.timedOut
	h.mu.Unlock()
	if stuck {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("step did not settle within %s (a goroutine is blocked outside the network queue):\n%s", quiesceTimeout, buf)
	}
}

// take removes from the queue up to max requests from→to ("" matches any
// node; max 0: all), oldest first, as the queue held them when asked.
func (h *hnet) take(from, to string, max int) []*hmsg {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*hmsg
	rest := h.queue[:0:0]
	for _, m := range h.queue {
		if (from == "" || m.from == from) && (to == "" || m.to == to) && (max == 0 || len(out) < max) {
			out = append(out, m)
		} else {
			rest = append(rest, m)
		}
	}
	h.queue = rest
	return out
}

// deliver runs m's destination handler and answers m's sender with what it
// returns (or, with loseAnswer, with a transport error: the request took
// effect but its answer was lost). The handler runs in a tracked goroutine:
// it may itself send a request and park.
func (h *hnet) deliver(m *hmsg, loseAnswer bool) {
	h.mu.Lock()
	dst := h.nodes[m.to].cur
	if dst == nil || m.src.dead {
		h.eventf("%s: not delivered, a node is down", m.desc)
		h.wake(m, hreply{err: errCrashed})
		h.mu.Unlock()
		return
	}
	from := h.nodes[m.from].peer
	h.active++
	h.mu.Unlock()
	go func() {
		resp, err := harnessHandle(dst.n, from, m.req)
		h.mu.Lock()
		switch {
		case dst.dead:
			// The destination crashed while its handler waited on a
			// request of its own: the answer never leaves.
			h.eventf("%s: answer lost in the crash", m.desc)
			resp, err = nil, errCrashed
		case err != nil:
			h.eventf("%s: handler error: %v", m.desc, err)
		default:
			h.eventf("%s: %s", m.desc, harnessDescribeResp(resp, h.alias))
		}
		if loseAnswer && !dst.dead {
			h.eventf("%s: answer lost", m.desc)
			resp, err = nil, errDropped
		}
		h.wake(m, hreply{resp: resp, err: err})
		h.active--
		h.cond.Broadcast()
		h.mu.Unlock()
	}()
}

// drop fails m at its sender with a transport error.
func (h *hnet) drop(m *hmsg, why error) {
	h.mu.Lock()
	h.eventf("%s: dropped", m.desc)
	h.wake(m, hreply{err: why})
	h.mu.Unlock()
}

// flush returns the output lines gathered since the last call.
func (h *hnet) flush() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	ev := h.events
	h.events = nil
	return ev
}

// aliases names sessions and commitments s1, s2, ... and c1, c2, ... in the
// order the transcript first meets them, so the output reads the same
// whatever the ids.
type aliases struct {
	mu    sync.Mutex
	names map[string]string
	next  map[string]int
	ids   map[string]string // alias -> id
}

func newAliases() *aliases {
	return &aliases{names: map[string]string{}, next: map[string]int{}, ids: map[string]string{}}
}

func (a *aliases) name(prefix, id string) string {
	if id == "" {
		return "-"
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if n, ok := a.names[id]; ok {
		return n
	}
	a.next[prefix]++
	n := fmt.Sprintf("%s%d", prefix, a.next[prefix])
	a.names[id] = n
	a.ids[n] = id
	return n
}

func (a *aliases) id(alias string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	id, ok := a.ids[alias]
	return id, ok
}

// hclock is the nodes' shared clock; it moves only on tick.
type hclock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *hclock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *hclock) advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// hrand is a deterministic, goroutine-safe random stream (ChaCha8 seeded
// from a label).
type hrand struct {
	mu sync.Mutex
	r  *rand.ChaCha8
}

func newHrand(label string) *hrand {
	return &hrand{r: rand.NewChaCha8(sha256.Sum256([]byte(label)))}
}

func (r *hrand) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.r.Read(p)
}
