package ledger

import (
	"bytes"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
)

// scanner checks entries in order: encoding, index, hash chain, and the
// Merkle root, keeping roots at the sizes asked for later. A broken link
// or a root mismatch is judged one entry later, so that the entry named is
// the changed one: if entry i's PrevHash is not the hash of entry i-1 but
// entry i+1 vouches for entry i, entry i-1 is the one that changed.
type scanner struct {
	n    uint64
	prev [32]byte
	rng  *compact.Range
	// roots remembers the roots computed so far at the sizes of interest.
	roots map[uint64][32]byte
	// linkBroken: entry n-1's PrevHash is not the hash of entry n-2.
	linkBroken bool
	// rootErr is a root mismatch at size n, reported unless entry n
	// reveals a changed entry first.
	rootErr error
}

func newScanner() *scanner {
	return &scanner{rng: rangeFactory.NewEmptyRange(0), roots: map[uint64][32]byte{0: emptyRoot}}
}

func (s *scanner) linkError(next *Entry) error {
	i := s.n - 1
	if next != nil && next.PrevHash == s.prev && i > 0 {
		return &VerifyError{What: "entry", Index: i - 1, Reason: fmt.Sprintf("changed: its hash differs from the prev hash that entry %d records", i)}
	}
	return &VerifyError{What: "entry", Index: i, Reason: fmt.Sprintf("prev hash does not match entry %d", int64(i)-1)}
}

// malformed reports an entry that does not decode.
func (s *scanner) malformed(err error) error {
	if s.linkBroken {
		return s.linkError(nil)
	}
	return &VerifyError{What: "entry", Index: s.n, Reason: "malformed", Err: err}
}

// checkLink checks that e is the next entry and chains to the previous one.
// A broken link is remembered (the error names it once the tail is known).
func (s *scanner) checkLink(e *Entry) error {
	if e.Index != s.n {
		if s.linkBroken {
			return s.linkError(nil)
		}
		return &VerifyError{What: "entry", Index: s.n, Reason: fmt.Sprintf("holds index %d: entries are missing, added or out of order", e.Index)}
	}
	if s.linkBroken {
		return s.linkError(e)
	}
	if e.PrevHash != s.prev {
		s.linkBroken, s.rootErr = true, nil
	} else if s.rootErr != nil {
		return s.rootErr
	}
	return nil
}

// add checks the next entry, decoded, with its leaf hash.
func (s *scanner) add(e *Entry, h [32]byte) error {
	if err := s.checkLink(e); err != nil {
		return err
	}
	s.rng.Append(bytes.Clone(h[:]), nil)
	s.prev = h
	s.n++
	return nil
}

// addGroup checks 256 entries starting at a multiple of 256 and adds them
// to the tree by their root. hookAt is the batch position of the first entry
// the hook rejected, j that of the group's first entry.
func (s *scanner) addGroup(es []Entry, leaves [][32]byte, root [32]byte, j, hookAt int, hookErr error) error {
	start := s.n
	for k := range es {
		e := &es[k]
		if err := s.checkLink(e); err != nil {
			return err
		}
		if j+k == hookAt {
			return &VerifyError{What: "entry", Index: e.Index, Reason: "body does not verify", Err: hookErr}
		}
		s.prev = leaves[k]
		s.n++
	}
	other, _ := rangeFactory.NewRange(start, start+tileWidth, [][]byte{bytes.Clone(root[:])})
	return s.rng.AppendRange(other, nil)
}

// checkRoot compares the root of the entries so far with want; a mismatch
// is reported by the next add or by finish.
func (s *scanner) checkRoot(want [32]byte, what string, from uint64) {
	if s.root() != want && !s.linkBroken {
		reason := fmt.Sprintf("root does not match entries [%d, %d)", from, s.n)
		if what == "anchor" {
			reason = "root differs from the bundle's: the log signed two different roots for this size"
		}
		s.rootErr = &VerifyError{What: what, Index: s.n, Reason: reason}
	}
}

// finish reports what is still pending after the last entry.
func (s *scanner) finish() error {
	if s.linkBroken {
		return s.linkError(nil)
	}
	return s.rootErr
}

// root returns the root of the entries added so far, and remembers it.
func (s *scanner) root() [32]byte {
	if r, ok := s.roots[s.n]; ok {
		return r
	}
	var out [32]byte
	r, _ := s.rng.GetRootHash(nil)
	copy(out[:], r)
	s.roots[s.n] = out
	return out
}

// rootAt returns a root computed earlier (or the current one).
func (s *scanner) rootAt(size uint64) ([32]byte, bool) {
	if size == s.n {
		return s.root(), true
	}
	r, ok := s.roots[size]
	return r, ok
}
