package trust

import "slices"

// The hard rule: an organisation whose ledger is proven to have signed two
// histories (a verified equivocation proof, ledger/witness) is not trusted
// again. From the moment Equivocated is called, in every Compute:
//
//   - each of its agents scores 0 (level L0), whatever the evidence, with
//     Explanation.Equivocated set;
//   - its own attestations weigh nothing: its organisation's weight is 0,
//     so nothing it said about others counts, for or against them.
//
// It is a rule, not evidence: it is not decayed, outweighed or contested,
// and it cannot be lifted. Who could abuse it: only a proof whose two
// checkpoints verify with the organisation's own certified checkpoint key
// and contradict each other marks it, so no one but the organisation (or
// whoever holds its identity key) can bring it about. The caller verifies
// the proof first (witness.VerifyEquivocation).

// Equivocated marks org (a peer id) as proven to equivocate, for good.
func (m *Model) Equivocated(org string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.equivocated == nil {
		m.equivocated = map[string]bool{}
	}
	m.equivocated[org] = true
}

// IsEquivocated reports whether org was marked by Equivocated.
func (m *Model) IsEquivocated(org string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.equivocated[org]
}

// zeroEquivocatedWeightLocked zeroes the weight of marked organisations (before
// pass 2 weighs evidence with it). REQUIRES: m.mu.
func (m *Model) zeroEquivocatedWeightLocked(weight []float64) {
	for org := range m.equivocated {
		if id, ok := m.orgIdx[org]; ok {
			weight[id] = 0
		}
	}
}

// condemnLocked sets the scores of the marked organisations' agents to 0
// in snap. REQUIRES: m.mu.
func (m *Model) condemnLocked(snap *Snapshot) {
	if len(m.equivocated) == 0 {
		return
	}
	snap.equivocated = make([]string, 0, len(m.equivocated))
	for org := range m.equivocated {
		snap.equivocated = append(snap.equivocated, org)
	}
	slices.Sort(snap.equivocated)
	for i := range snap.expl {
		if snap.isEquivocated(OrgOf(snap.expl[i].AgentID)) {
			e := &snap.expl[i]
			e.Score, e.Level, e.Completed, e.Equivocated = 0, LevelFor(0, 0), 0, true
		}
	}
}

// isEquivocated reports whether the snapshot's model had marked org.
func (s *Snapshot) isEquivocated(org string) bool {
	_, ok := slices.BinarySearch(s.equivocated, org)
	return ok
}
