package node

import (
	"sync"

	"github.com/aspnode/asp/node/api"
)

// bus fans events out to the subscriptions of each agent. A slow subscriber
// loses events rather than stalling the node: its buffer is bounded and the
// drop is counted.
type bus struct {
	mu   sync.Mutex
	subs map[string]map[*sub]struct{} // agent id -> subscriptions
	drop func()
}

type sub struct {
	ch     chan api.Event
	closed bool
}

const subBuffer = 256

func newBus(drop func()) *bus {
	return &bus{subs: make(map[string]map[*sub]struct{}), drop: drop}
}

// subscribe registers a subscription for agent.
func (b *bus) subscribe(agent string) (<-chan api.Event, func()) {
	s := &sub{ch: make(chan api.Event, subBuffer)}
	b.mu.Lock()
	m := b.subs[agent]
	if m == nil {
		m = make(map[*sub]struct{})
		b.subs[agent] = m
	}
	m[s] = struct{}{}
	b.mu.Unlock()
	var once sync.Once
	return s.ch, func() {
		once.Do(func() {
			b.mu.Lock()
			defer b.mu.Unlock()
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
		})
	}
}

// publish sends ev to every subscription of each named agent.
func (b *bus) publish(ev api.Event, agents ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, a := range agents {
		for s := range b.subs[a] {
			select {
			case s.ch <- ev:
			default:
				if b.drop != nil {
					b.drop()
				}
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

// has reports whether agent has a subscription.
func (b *bus) has(agent string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs[agent]) > 0
}
