package protocol

import (
	"maps"
	"slices"
)

// Clone returns an independent copy of s: stepping the copy leaves s as it
// is. Envelopes and commitments are immutable values and are shared.
//
// A node uses it to check an outgoing move against the session before the
// counterparty has acknowledged it, and to apply the move only once it has.
func (s *Session) Clone() *Session {
	c := *s
	c.transcript = slices.Clone(s.transcript)
	c.hashes = slices.Clone(s.hashes)
	c.byID = maps.Clone(s.byID)
	c.offers = make(map[string]*offer, len(s.offers))
	for k, o := range s.offers {
		oc := *o
		c.offers[k] = &oc
	}
	c.offerOrder = slices.Clone(s.offerOrder)
	c.commitments = slices.Clone(s.commitments)
	c.certs = maps.Clone(s.certs)
	return &c
}
