package node

import "sync"

// sessionTable holds the node's sessions by id, and counts the sessions
// other organisations opened (inbound.go).
type sessionTable struct {
	mu   sync.RWMutex
	byID map[string]*session
	// inbound holds, by remote organisation, the sessions it opened with
	// us that were open when last looked at; inboundN is their number.
	inbound  map[string]map[*session]struct{}
	inboundN int
}

func newSessionTable() *sessionTable {
	return &sessionTable{byID: make(map[string]*session)}
}

func (t *sessionTable) get(id string) *session {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.byID[id]
}

// put inserts s unless a session with its id exists; it returns the
// session in the table.
func (t *sessionTable) put(s *session) *session {
	t.mu.Lock()
	defer t.mu.Unlock()
	if old := t.byID[s.id]; old != nil {
		return old
	}
	t.byID[s.id] = s
	return s
}

// drop removes s (if the table holds it under its id).
func (t *sessionTable) drop(s *session) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byID[s.id] == s {
		delete(t.byID, s.id)
	}
}

// list returns the sessions for which keep (nil: all) is true, read under
// the table's lock; keep must not take another lock.
func (t *sessionTable) list(keep func(*session) bool) []*session {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]*session, 0, len(t.byID))
	for _, s := range t.byID {
		if keep == nil || keep(s) {
			out = append(out, s)
		}
	}
	return out
}

func (t *sessionTable) len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.byID)
}

// commitmentBook holds the commitments the node's agents are parties to,
// by id.
type commitmentBook struct {
	mu   sync.RWMutex
	byID map[string]*commitment
}

func newCommitmentBook() *commitmentBook {
	return &commitmentBook{byID: make(map[string]*commitment)}
}

func (b *commitmentBook) get(id string) *commitment {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.byID[id]
}

func (b *commitmentBook) put(c *commitment) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.byID[c.id] = c
}

// list returns the commitments for which keep (nil: all) is true, read
// under the book's lock; keep reads only what is immutable or atomic.
func (b *commitmentBook) list(keep func(*commitment) bool) []*commitment {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]*commitment, 0, len(b.byID))
	for _, c := range b.byID {
		if keep == nil || keep(c) {
			out = append(out, c)
		}
	}
	return out
}

// any reports whether keep is true of a commitment (same rules as list).
func (b *commitmentBook) any(keep func(*commitment) bool) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, c := range b.byID {
		if keep(c) {
			return true
		}
	}
	return false
}

func (b *commitmentBook) len() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.byID)
}
