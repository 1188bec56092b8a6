package ledger

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"golang.org/x/mod/sumdb/note"
)

// Check verifies the stored ledger from scratch (an fsck): it re-derives
// the hash chain and the Merkle tree from the stored entries and compares
// them with the stored tiles, the tree head, every stored checkpoint (and
// its signature, when a key certificate is stored) and the indexes. It
// returns nil or a *CorruptionError naming the first bad entry (or the
// checkpoint, tile or index that does not match). It detects a changed
// byte in any entry, a deleted, inserted or reordered entry, a truncated
// tail, and a checkpoint that does not match the entries.
//
// Check reads a consistent snapshot; appends may continue meanwhile.
func (l *Ledger) Check(ctx context.Context) error {
	if err := l.rlock(); err != nil {
		return err
	}
	defer l.runlock()
	snap := l.db.NewSnapshot()
	defer snap.Close()
	return checkStore(ctx, snap, l.opts.Origin)
}

// checkStore is Check on a reader.
func checkStore(ctx context.Context, r reader, origin string) error {
	v, err := getFrom(r, keyFormat)
	if err != nil {
		return corrupt("format", "format version: %v", err)
	}
	if len(v) != 4 || binary.BigEndian.Uint32(v) == 0 || binary.BigEndian.Uint32(v) > FormatVersion {
		return corrupt("format", "format version %x", v)
	}

	// The tree head.
	head := newTreeState()
	v, err = getFrom(r, keyTree)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return err
	default:
		if head, err = unmarshalTreeHead(v); err != nil {
			return err
		}
	}
	size := head.size

	// Checkpoints and their signatures.
	certs, err := certificates(r)
	if err != nil {
		return err
	}
	var verifiers []note.Verifier
	for _, c := range certs {
		if err := c.Verify(); err != nil {
			return corrupt("certificate", "%v", err)
		}
		v, err := c.Verifier()
		if err != nil {
			return corrupt("certificate", "%v", err)
		}
		verifiers = append(verifiers, v)
	}
	cps := map[uint64][32]byte{}
	var cpErr error
	err = eachCheckpoint(r, false, func(s uint64, rec cpRecord) (bool, error) {
		if s > size {
			cpErr = &CorruptionError{What: "checkpoint", Index: s, Reason: fmt.Sprintf("beyond the tree size %d", size)}
			return false, nil
		}
		if origin != "" && rec.cp.Origin != origin {
			cpErr = &CorruptionError{What: "checkpoint", Index: s, Reason: fmt.Sprintf("origin %q, want %q", rec.cp.Origin, origin)}
			return false, nil
		}
		if rec.state == cpSigned && len(verifiers) > 0 {
			if err := openWithAny(rec.text, rec.cp.Origin, verifiers); err != nil {
				cpErr = &CorruptionError{What: "checkpoint", Index: s, Reason: err.Error()}
				return false, nil
			}
		}
		cps[s] = rec.root
		return true, nil
	})
	if err != nil {
		return err
	}
	if cpErr != nil {
		return cpErr
	}
	if root, ok := cps[0]; ok && root != emptyRoot {
		return &CorruptionError{What: "checkpoint", Index: 0, Reason: "root is not the empty tree's"}
	}

	// The entries, in one pass.
	c := checker{r: r, size: size, head: head, cps: cps, st: newTreeState()}
	c.seed = maphash.MakeSeed()
	if err := c.entries(ctx); err != nil {
		return err
	}
	if err := c.indexes(); err != nil {
		return err
	}
	return c.tiles()
}

// openWithAny verifies a signed checkpoint with any of the verifiers.
func openWithAny(signed []byte, origin string, vs []note.Verifier) error {
	var last error
	for _, v := range vs {
		if _, _, err := ParseCheckpoint(signed, origin, v); err == nil {
			return nil
		} else {
			last = err
		}
	}
	return last
}

type checker struct {
	r    reader
	size uint64
	head *treeState
	cps  map[uint64][32]byte
	st   *treeState // re-derived from the entries

	seed     maphash.Seed
	idxSum   uint64 // sum of maphash of the index keys the entries imply
	idxCount uint64
	tileN    uint64 // full tiles re-derived

	tileErr error
}

// entries scans the entries in index order.
func (c *checker) entries(ctx context.Context) error {
	it, err := c.r.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixEntry}, UpperBound: []byte{prefixEntry + 1}})
	if err != nil {
		return err
	}
	defer it.Close()

	var (
		prev   [32]byte
		leaf   = make([]byte, 32)
		tile   []byte // stored level-0 tile covering i, if full
		key    []byte
		i      uint64
		badCP  uint64 // a checkpoint size whose root did not match
		emitFn = func(t fullTile) { c.checkTile(t) }
	)
	for ok := it.First(); ok; ok, i = it.Next(), i+1 {
		if i&0xffff == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		k := it.Key()
		if len(k) != 9 {
			return corrupt("entry", "entry key %x is malformed", k)
		}
		if ki := binary.BigEndian.Uint64(k[1:]); ki != i {
			if i >= c.size {
				return corruptEntry(ki, "stored beyond the tree size %d", c.size)
			}
			return corruptEntry(i, "missing")
		}
		if i >= c.size {
			return corruptEntry(i, "stored beyond the tree size %d", c.size)
		}
		b := it.Value()
		e, err := DecodeEntry(b)
		if err != nil {
			return corruptEntry(i, "%v", err)
		}
		if e.Index != i {
			return corruptEntry(i, "holds index %d", e.Index)
		}
		h := LeafHash(b)

		// The leaf against the stored tile, when entry i is in a full tile.
		if i%tileWidth == 0 {
			tile = nil
			if i+tileWidth <= c.size {
				t, err := getFrom(c.r, tileKey(0, i/tileWidth))
				if err != nil {
					return corrupt("tile", "tile 0/%d: %v", i/tileWidth, err)
				}
				if err := checkTile(t); err != nil {
					return corrupt("tile", "tile 0/%d: %v", i/tileWidth, err)
				}
				tile = t
			}
		}
		if tile != nil {
			o := (i % tileWidth) * 32
			if !bytes.Equal(tile[o:o+32], h[:]) {
				return corruptEntry(i, "hash differs from the stored Merkle tree (changed entry)")
			}
		}

		// The chain link from entry i-1.
		if e.PrevHash != prev {
			return c.brokenLink(i, prev, h, tile != nil)
		}

		if badCP != 0 {
			return &CorruptionError{What: "checkpoint", Index: badCP, Reason: "root does not match the entries"}
		}

		// Index keys implied by the entry.
		key = appendKindIndexKey(key[:0], e.Kind, i)
		c.addIndexKey(key)
		if e.Session != "" {
			c.addIndexKey(appendIDIndexKey(key[:0], idxSession, e.Session, i))
		}
		if e.Commitment != "" {
			c.addIndexKey(appendIDIndexKey(key[:0], idxCommitment, e.Commitment, i))
		}

		leaf = append(leaf[:0:0], h[:]...)
		c.st.appendLeaf(leaf, emitFn)
		if c.tileErr != nil {
			return c.tileErr
		}
		prev = h
		if root, ok := c.cps[i+1]; ok {
			c.st.finish()
			if c.st.root != root {
				// Reported once the next link (or the tip) has vouched
				// for entry i, so that a changed entry is named first.
				badCP = i + 1
			}
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	if i < c.size {
		return corruptEntry(i, "missing (the log ends early: truncated tail)")
	}
	c.st.finish()
	if c.size > 0 && c.st.tip != c.head.tip {
		return corruptEntry(c.size-1, "hash differs from the one recorded in the tree head (changed entry)")
	}
	if badCP != 0 {
		return &CorruptionError{What: "checkpoint", Index: badCP, Reason: "root does not match the entries"}
	}
	if c.st.root != c.head.root {
		return corrupt("tree", "tree head root differs from the root of the entries")
	}
	hs, want := c.st.rng.Hashes(), c.head.rng.Hashes()
	if len(hs) != len(want) {
		return corrupt("tree", "tree head compact range differs from the entries'")
	}
	for j := range hs {
		if !bytes.Equal(hs[j], want[j]) {
			return corrupt("tree", "tree head compact range differs from the entries'")
		}
	}
	if root, ok := c.cps[0]; ok && root != emptyRoot {
		return &CorruptionError{What: "checkpoint", Index: 0, Reason: "root is not the empty tree's"}
	}
	return nil
}

// brokenLink decides which entry to name when entry i's PrevHash is not the
// hash of entry i-1: entry i-1 if entry i is itself vouched for (by a stored
// tile, by entry i+1's PrevHash, or by the tree head's tip), else entry i.
func (c *checker) brokenLink(i uint64, prev, h [32]byte, inTile bool) error {
	if i == 0 {
		return corruptEntry(0, "prev hash is not zero")
	}
	vouched := inTile
	if !vouched {
		if i+1 < c.size {
			if b, err := getFrom(c.r, entryKey(i+1)); err == nil {
				if next, err := DecodeEntry(b); err == nil && next.PrevHash == h {
					vouched = true
				}
			}
		} else if h == c.head.tip {
			vouched = true
		}
	}
	if vouched {
		return corruptEntry(i-1, "hash differs from the prev hash that entry %d records (changed entry)", i)
	}
	return corruptEntry(i, "prev hash does not match entry %d", i-1)
}

func (c *checker) addIndexKey(k []byte) {
	c.idxSum += maphash.Bytes(c.seed, k)
	c.idxCount++
}

// checkTile compares a tile re-derived from the entries with the stored one.
func (c *checker) checkTile(t fullTile) {
	if c.tileErr != nil {
		return
	}
	c.tileN++
	stored, err := getFrom(c.r, tileKey(t.level, t.index))
	if err != nil {
		c.tileErr = corrupt("tile", "tile %d/%d: %v", t.level, t.index, err)
		return
	}
	if !bytes.Equal(stored, t.data) {
		c.tileErr = corrupt("tile", "tile %d/%d differs from the entries", t.level, t.index)
	}
}

// tiles checks that no tile is stored beyond those the entries imply.
func (c *checker) tiles() error {
	it, err := c.r.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixTile}, UpperBound: []byte{prefixTile + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	var n uint64
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	if err := it.Error(); err != nil {
		return err
	}
	if n != c.tileN {
		return corrupt("tile", "%d tiles stored, the entries imply %d", n, c.tileN)
	}
	return nil
}

// indexes compares the index keys with those the entries imply; on a
// mismatch it looks for the first entry whose index keys are wrong.
func (c *checker) indexes() error {
	it, err := c.r.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixIndex}, UpperBound: []byte{prefixIndex + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	var sum, n uint64
	for ok := it.First(); ok; ok = it.Next() {
		sum += maphash.Bytes(c.seed, it.Key())
		n++
		if len(it.Value()) != 0 {
			return corrupt("index", "index key %x has a value", it.Key())
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	if sum == c.idxSum && n == c.idxCount {
		return nil
	}
	return c.findIndexFault()
}

// findIndexFault names the first entry with a missing index key, or the
// first stray index key. It runs only after a mismatch.
func (c *checker) findIndexFault() error {
	var bad []uint64
	it, err := c.r.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixIndex}, UpperBound: []byte{prefixIndex + 1}})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) < 2+8 {
			bad = append(bad, ^uint64(0))
			continue
		}
		i := binary.BigEndian.Uint64(k[len(k)-8:])
		b, err := getFrom(c.r, entryKey(i))
		if err != nil {
			bad = append(bad, i)
			continue
		}
		e, _ := DecodeEntry(b)
		if !slices.ContainsFunc(impliedIndexKeys(&e), func(x []byte) bool { return bytes.Equal(x, k) }) {
			bad = append(bad, i)
		}
	}
	it.Close()
	// Entries whose keys are missing.
	ent, err := c.r.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixEntry}, UpperBound: []byte{prefixEntry + 1}})
	if err != nil {
		return err
	}
	defer ent.Close()
	for ok := ent.First(); ok; ok = ent.Next() {
		e, err := DecodeEntry(ent.Value())
		if err != nil {
			continue
		}
		for _, k := range impliedIndexKeys(&e) {
			if _, err := getFrom(c.r, k); err != nil {
				bad = append(bad, e.Index)
				break
			}
		}
		if len(bad) > 0 && e.Index >= slices.Min(bad) {
			break
		}
	}
	if len(bad) == 0 {
		return corrupt("index", "index keys do not match the entries")
	}
	i := slices.Min(bad)
	if i == ^uint64(0) {
		return corrupt("index", "malformed index key")
	}
	return &CorruptionError{What: "index", Index: i, Reason: fmt.Sprintf("index keys of entry %d do not match it", i)}
}

func impliedIndexKeys(e *Entry) [][]byte {
	out := [][]byte{appendKindIndexKey(nil, e.Kind, e.Index)}
	if e.Session != "" {
		out = append(out, appendIDIndexKey(nil, idxSession, e.Session, e.Index))
	}
	if e.Commitment != "" {
		out = append(out, appendIDIndexKey(nil, idxCommitment, e.Commitment, e.Index))
	}
	return out
}
