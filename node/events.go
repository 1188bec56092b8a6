package node

import (
	"slices"
	"sync"
	"time"

	"github.com/aspnode/asp/node/api"
)

// EventRing is the number of recent events a node keeps so that an agent's
// event stream can resume where it broke off (GET /v1/events with
// Last-Event-ID): the last EventRing events of the node, all agents
// together. An agent whose stream comes back after some of its own events
// left the ring is told so by a "gap" event (the node remembers, per
// agent, the newest of its events that left).
const EventRing = 4096

// bus fans events out to the subscriptions of each agent and keeps the
// last events in a ring for replay.
//
// Event ids. Every published event gets the next id of the node: ids only
// grow while the node runs, and a restarted node starts above every id of
// its previous run (the first id is the start time in microseconds, so ids
// stay below 2^53 and survive a JSON number), so an id from before a
// restart always asks for a replay the ring cannot give and is answered
// with a gap, never with someone else's events. A clock set back across a
// restart could break that order; an id above the newest is then also
// answered with a gap.
//
// A slow subscriber never stalls the node: when its buffer is full its
// subscription is ended (the drop is counted) and the stream closes; the
// client resumes with the id of the last event it got and the ring replays
// the rest.
type bus struct {
	mu   sync.Mutex
	subs map[string]map[*sub]struct{} // agent id -> subscriptions
	drop func()

	// ring holds the last len(ring) events, oldest at ring[head] once full.
	// INVARIANT: ids in the ring are consecutive, ending at next-1.
	ring []ringEntry
	head int
	// first is the id of this run's first event, next of the next one.
	first, next uint64
	// evicted holds, per agent, the id of its newest event that left the
	// ring: a resumption from before it has lost events.
	evicted map[string]uint64
	// streamed holds the agents that subscribed since the node started:
	// only they can come back for a replay.
	streamed map[string]bool
}

type ringEntry struct {
	ev     api.Event
	agents []string
}

type sub struct {
	ch     chan api.Event
	closed bool
}

const subBuffer = 256

func newBus(drop func()) *bus {
	return newBusRing(drop, EventRing, uint64(time.Now().UnixMicro()))
}

// newBusRing returns a bus keeping size events, whose first event id is
// first (at least 1).
func newBusRing(drop func(), size int, first uint64) *bus {
	if first == 0 {
		first = 1
	}
	return &bus{subs: make(map[string]map[*sub]struct{}), drop: drop,
		ring: make([]ringEntry, 0, size), first: first, next: first,
		evicted: make(map[string]uint64), streamed: make(map[string]bool)}
}

// subscribe registers a subscription for agent, for events published from
// now on.
func (b *bus) subscribe(agent string) (<-chan api.Event, func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.subscribeLocked(agent)
}

// subscribeSince registers a subscription for agent and returns, with it,
// newest: the id of the last event published before it (0 if none). With
// resume it also returns the agent's events after the event id after that
// the ring still holds, in order, and gap: true when some of the agent's
// events after that id are no longer held (they left the ring, or the id
// is not one of this run's), and oldest: the id of the oldest event held
// (the next id when none is). Events on the channel follow newest without
// overlap.
func (b *bus) subscribeSince(agent string, resume bool, after uint64) (replay []api.Event, gap bool, oldest, newest uint64, events <-chan api.Event, cancel func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	oldest = b.next - uint64(len(b.ring))
	newest = b.next - 1
	if newest < b.first {
		newest = 0
	}
	if resume {
		if after >= b.next || after+1 < b.first {
			// Not an id of this run: what is held is all there is.
			gap, after = true, 0
		} else {
			gap = b.evicted[agent] > after
		}
		for i := range b.ring {
			e := &b.ring[(b.head+i)%len(b.ring)]
			if e.ev.ID > after && slices.Contains(e.agents, agent) {
				replay = append(replay, e.ev)
			}
		}
	}
	events, cancel = b.subscribeLocked(agent)
	return replay, gap, oldest, newest, events, cancel
}

// REQUIRES: b.mu.
func (b *bus) subscribeLocked(agent string) (<-chan api.Event, func()) {
	s := &sub{ch: make(chan api.Event, subBuffer)}
	b.streamed[agent] = true
	m := b.subs[agent]
	if m == nil {
		m = make(map[*sub]struct{})
		b.subs[agent] = m
	}
	m[s] = struct{}{}
	var once sync.Once
	return s.ch, func() {
		once.Do(func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.removeLocked(agent, s)
		})
	}
}

// removeLocked ends the subscription s of agent.
//
// REQUIRES: b.mu.
func (b *bus) removeLocked(agent string, s *sub) {
	if m := b.subs[agent]; m != nil {
		delete(m, s)
		if len(m) == 0 {
			delete(b.subs, agent)
		}
	}
	if !s.closed {
		s.closed = true
		close(s.ch)
	}
}

// publish gives ev the next id, keeps it in the ring and sends it to every
// subscription of each named agent.
func (b *bus) publish(ev api.Event, agents ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ev.ID = b.next
	b.next++
	if cap(b.ring) > 0 {
		e := ringEntry{ev: ev, agents: append([]string(nil), agents...)}
		if len(b.ring) < cap(b.ring) {
			b.ring = append(b.ring, e)
		} else {
			for _, a := range b.ring[b.head].agents {
				b.evicted[a] = b.ring[b.head].ev.ID
			}
			b.ring[b.head] = e
			b.head = (b.head + 1) % len(b.ring)
		}
	}
	for _, a := range agents {
		for s := range b.subs[a] {
			select {
			case s.ch <- ev:
			default:
				// The subscriber is behind: end its stream; it resumes
				// from the ring.
				if b.drop != nil {
					b.drop()
				}
				b.removeLocked(a, s)
			}
		}
	}
}

// closeAgent ends every subscription of agent.
func (b *bus) closeAgent(agent string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs[agent] {
		if !s.closed {
			s.closed = true
			close(s.ch)
		}
	}
	delete(b.subs, agent)
}

// closeAll ends every subscription.
func (b *bus) closeAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.subs {
		for s := range m {
			if !s.closed {
				s.closed = true
				close(s.ch)
			}
		}
	}
	b.subs = make(map[string]map[*sub]struct{})
}

// Subscribe implements api.Backend.
func (n *Node) Subscribe(agentID string) (<-chan api.Event, func()) {
	return n.bus.subscribe(agentID)
}

// SubscribeSince implements api.EventReplayer: the agent's events after
// the id after that the node still holds (with resume), then live ones.
func (n *Node) SubscribeSince(agentID string, resume bool, after uint64) (api.Replay, <-chan api.Event, func()) {
	evs, gap, oldest, newest, ch, cancel := n.bus.subscribeSince(agentID, resume, after)
	return api.Replay{Events: evs, Gap: gap, Oldest: oldest, Newest: newest}, ch, cancel
}

// has reports whether an event for agent is wanted: it has a
// subscription, or had one since the node started and may come back for a
// replay. An agent that never opened a stream has no position to resume
// from, so its events need not be built (publish keeps whatever it gets).
func (b *bus) has(agent string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs[agent]) > 0 || (cap(b.ring) > 0 && b.streamed[agent])
}
