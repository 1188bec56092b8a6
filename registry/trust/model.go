package trust

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
)

// Model holds the evidence set and computes scores from it. Add is
// incremental (amortised O(1)); Compute recomputes every score for one
// observer and time in O(evidence + iterations·organisation pairs), reading
// no clock. It is safe for concurrent use; Compute holds the lock while it
// runs.
type Model struct {
	mu  sync.Mutex
	cfg Config

	// Interning: agents and organisations get dense int32 ids in arrival
	// order. Arrival order never reaches a result: every sum that runs in id
	// order is exact (fixed point), and the power iteration runs in the
	// canonical (name-sorted) order of organisations.
	agentIdx map[string]int32
	agents   []agentRec
	orgIdx   map[string]int32
	orgs     []string

	// byKey finds the one item per (attester, commitment).
	byKey map[itemKey]int32
	items []item

	// pairs are (attester organisation, subject agent); every item belongs
	// to exactly one. orgPairs are (attester org, subject org).
	pairIdx    map[uint64]int32
	pairs      []pair
	orgPairIdx map[uint64]int32
	orgPairs   []orgPair

	// Canonical order, rebuilt when names were added since the last Compute.
	// INVARIANT: once published to a Snapshot these slices are never
	// mutated (a rebuild allocates new ones).
	rankedAgents []int32  // agent ids sorted by name
	agentNames   []string // names in that order
	rankedOrgs   []int32  // org ids sorted by name
	orgNames     []string
	orgRank      []int32 // org id -> rank

	scratch scratch

	// equivocated are the organisations proven to equivocate (the hard
	// rule, equivocation.go).
	equivocated map[string]bool
}

type agentRec struct {
	name string
	org  int32
	// Evidence rejected at Add, about this agent as subject.
	self, sameOrg int32
}

type itemKey struct {
	att int32
	cmt string
}

// item is one stored piece of evidence.
type item struct {
	cmt   string
	t     int64   // unix nanoseconds
	omega float64 // value weight
	att   int32   // attester agent
	sub   int32   // subject agent
	pair  int32
	out   Outcome
}

type pair struct {
	attOrg, sub, orgPair int32
}

type orgPair struct {
	from, to int32
}

// New returns an empty model. Zero fields of cfg take their defaults.
func New(cfg Config) (*Model, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Model{
		cfg:        c,
		agentIdx:   make(map[string]int32),
		orgIdx:     make(map[string]int32),
		byKey:      make(map[itemKey]int32),
		pairIdx:    make(map[uint64]int32),
		orgPairIdx: make(map[uint64]int32),
	}, nil
}

// Config returns the model's configuration with defaults filled in.
func (m *Model) Config() Config {
	c := m.cfg
	c.PreTrusted = slices.Clone(c.PreTrusted)
	return c
}

// Len returns the number of evidence items held (after deduplication).
func (m *Model) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.items)
}

// Add records one piece of evidence. It returns nil if the item was stored
// (new, or replacing an older item of the same attester about the same
// commitment) and otherwise an error wrapping one of:
//
//   - ErrInvalid: malformed (see Evidence); nothing is recorded.
//   - ErrSelf, ErrSameOrg: the attester is the subject, or both are agents
//     of one organisation. Nothing counts; the subject's Explanation counts
//     the rejection under Ignored.
//   - ErrDuplicate: the model already holds an item of this attester about
//     this commitment that is as new or newer.
//
// One item per (attester, commitment), latest wins: a commitment's outcome
// can legitimately change (fulfilled, then disputed and lost), and the most
// recent word of an attester is its final one. Between two items with the
// same time the more severe outcome wins (dispute_lost, breached, expired,
// dispute_won, fulfilled, cancelled), then the greater subject id, then the
// greater value weight, so the kept item does not depend on arrival order.
//
// The caller must have verified the evidence first (see Evidence).
func (m *Model) Add(e Evidence) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.addLocked(&e)
}

// AddStats counts what AddAll did.
type AddStats struct {
	Stored, Duplicate, Self, SameOrg, Invalid int
}

// AddAll adds every item (see Add) and counts the results.
func (m *Model) AddAll(evs []Evidence) AddStats {
	var st AddStats
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range evs {
		switch err := m.addLocked(&evs[i]); {
		case err == nil:
			st.Stored++
		case errors.Is(err, ErrDuplicate):
			st.Duplicate++
		case errors.Is(err, ErrSelf):
			st.Self++
		case errors.Is(err, ErrSameOrg):
			st.SameOrg++
		default:
			st.Invalid++
		}
	}
	return st
}

// addLocked validates and stores evidence. REQUIRES: m.mu.
func (m *Model) addLocked(e *Evidence) error {
	c, err := check(e)
	if err != nil {
		if errors.Is(err, ErrSelf) || errors.Is(err, ErrSameOrg) {
			sub := m.internAgent(e.Subject, c.subOrg)
			if errors.Is(err, ErrSelf) {
				m.agents[sub].self++
			} else {
				m.agents[sub].sameOrg++
			}
		}
		return err
	}
	att := m.internAgent(e.Attester, c.attOrg)
	sub := m.internAgent(e.Subject, c.subOrg)
	if len(m.items) >= math.MaxInt32 {
		return fmt.Errorf("%w: model full", ErrInvalid)
	}
	it := item{
		cmt:   e.CommitmentID,
		t:     e.Time.UnixNano(),
		omega: c.omega,
		att:   att,
		sub:   sub,
		out:   e.Outcome,
	}
	it.pair = m.internPair(m.agents[att].org, sub)
	key := itemKey{att: att, cmt: e.CommitmentID}
	if i, ok := m.byKey[key]; ok {
		old := &m.items[i]
		if !m.newer(&it, old) {
			return fmt.Errorf("%w: %s about %s", ErrDuplicate, e.Attester, e.CommitmentID)
		}
		it.cmt = old.cmt // keep one copy of the string
		*old = it
		return nil
	}
	m.byKey[key] = int32(len(m.items))
	m.items = append(m.items, it)
	return nil
}

// newer reports whether a should replace b (same attester and commitment).
func (m *Model) newer(a, b *item) bool {
	if a.t != b.t {
		return a.t > b.t
	}
	if sa, sb := a.out.severity(), b.out.severity(); sa != sb {
		return sa > sb
	}
	if a.sub != b.sub {
		return strings.Compare(m.agents[a.sub].name, m.agents[b.sub].name) > 0
	}
	return a.omega > b.omega
}

func (m *Model) internOrg(name string) int32 {
	if id, ok := m.orgIdx[name]; ok {
		return id
	}
	id := int32(len(m.orgs))
	m.orgIdx[name] = id
	m.orgs = append(m.orgs, name)
	m.orgNames = nil // canonical order is stale
	return id
}

func (m *Model) internAgent(name, org string) int32 {
	if id, ok := m.agentIdx[name]; ok {
		return id
	}
	id := int32(len(m.agents))
	m.agentIdx[name] = id
	m.agents = append(m.agents, agentRec{name: name, org: m.internOrg(org)})
	m.agentNames = nil
	return id
}

func (m *Model) internPair(attOrg, sub int32) int32 {
	k := uint64(uint32(attOrg))<<32 | uint64(uint32(sub))
	if id, ok := m.pairIdx[k]; ok {
		return id
	}
	subOrg := m.agents[sub].org
	ok2 := uint64(uint32(attOrg))<<32 | uint64(uint32(subOrg))
	op, ok := m.orgPairIdx[ok2]
	if !ok {
		op = int32(len(m.orgPairs))
		m.orgPairIdx[ok2] = op
		m.orgPairs = append(m.orgPairs, orgPair{from: attOrg, to: subOrg})
	}
	id := int32(len(m.pairs))
	m.pairIdx[k] = id
	m.pairs = append(m.pairs, pair{attOrg: attOrg, sub: sub, orgPair: op})
	return id
}

// canonicalLocked rebuilds the name-sorted orders if names were added.
// REQUIRES: m.mu.
func (m *Model) canonicalLocked() {
	if m.agentNames == nil || len(m.agentNames) != len(m.agents) {
		ids := make([]int32, len(m.agents))
		for i := range ids {
			ids[i] = int32(i)
		}
		slices.SortFunc(ids, func(a, b int32) int { return strings.Compare(m.agents[a].name, m.agents[b].name) })
		names := make([]string, len(ids))
		for r, id := range ids {
			names[r] = m.agents[id].name
		}
		m.rankedAgents, m.agentNames = ids, names
	}
	if m.orgNames == nil || len(m.orgNames) != len(m.orgs) {
		ids := make([]int32, len(m.orgs))
		for i := range ids {
			ids[i] = int32(i)
		}
		slices.SortFunc(ids, func(a, b int32) int { return strings.Compare(m.orgs[a], m.orgs[b]) })
		names := make([]string, len(ids))
		rank := make([]int32, len(ids))
		for r, id := range ids {
			names[r] = m.orgs[id]
			rank[id] = int32(r)
		}
		m.rankedOrgs, m.orgNames, m.orgRank = ids, names, rank
	}
}
