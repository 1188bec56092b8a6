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
func (l *Ledger) Check(ctx context.Context) (err error) {
	if err := l.rlock(); err != nil {
		return err
	}
	defer l.runlock()
	defer recoverFatal(&err)
	snap := l.db.NewSnapshot()
	defer snap.Close()
	return l.dmg.storeErr(checkStore(ctx, snap, l.opts.Origin))
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

// entries scans the entries in index order (see scan.go): the decoding,
// leaf hashes and full tiles are computed in parallel, the rest in order.
func (c *checker) entries(ctx context.Context) error {
	it, err := c.r.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixEntry}, UpperBound: []byte{prefixEntry + 1}})
	if err != nil {
		return err
	}
	defer it.Close()

	// Sizes at which the root must be computed: no whole-tile shortcut
	// across them.
	var cpSizes []uint64
	for s := range c.cps {
		cpSizes = append(cpSizes, s)
	}
	slices.Sort(cpSizes)

	// The stored level-0 tiles, read in order alongside the entries and
	// handed to the workers with each batch.
	tit, err := c.r.NewIter(&pebble.IterOptions{LowerBound: tileKey(0, 0), UpperBound: tileKey(1, 0)})
	if err != nil {
		return err
	}
	defer tit.Close()
	tok := tit.First()
	storedTile := func(n uint64) []byte {
		for tok && binary.BigEndian.Uint64(tit.Key()[2:]) < n {
			tok = tit.Next()
		}
		if tok && binary.BigEndian.Uint64(tit.Key()[2:]) == n {
			return bytes.Clone(tit.Value())
		}
		return nil
	}
	produce := func(emit func(*scanBatch) bool) error {
		var next uint64
		b := &scanBatch{first: 0}
		emit0 := emit
		emit = func(b *scanBatch) bool {
			// Attach the stored tiles of the batch's whole groups.
			for g := (b.first + tileWidth - 1) / tileWidth; (g+1)*tileWidth <= b.first+uint64(b.len()); g++ {
				b.stored = append(b.stored, storedTile(g))
			}
			return emit0(b)
		}
		for ok := it.First(); ok; ok = it.Next() {
			if next&0xffff == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			k := it.Key()
			var stop error
			switch {
			case len(k) != 9:
				stop = corrupt("entry", "entry key %x is malformed", k)
			case binary.BigEndian.Uint64(k[1:]) != next && next < c.size:
				stop = corruptEntry(next, "missing")
			case next >= c.size:
				stop = corruptEntry(binary.BigEndian.Uint64(k[1:]), "stored beyond the tree size %d", c.size)
			}
			if stop != nil {
				b.stop = stop
				emit(b)
				return nil
			}
			b.buf = append(b.buf, it.Value()...)
			b.ends = append(b.ends, len(b.buf))
			next++
			if n := len(b.ends); n == scanBatchEntries ||
				(len(b.buf) >= scanBatchBytes && (next%tileWidth == 0 || len(b.buf) >= 4*scanBatchBytes)) {
				if !emit(b) {
					return nil
				}
				b = &scanBatch{first: next, buf: make([]byte, 0, len(b.buf))}
			}
		}
		if err := it.Error(); err != nil {
			return err
		}
		if next < c.size {
			b.stop = corruptEntry(next, "missing (the log ends early: truncated tail)")
		}
		emit(b)
		return nil
	}

	var (
		prev   [32]byte
		key    []byte
		badCP  uint64 // a checkpoint size whose root did not match
		cpNext int    // index into cpSizes of the next size to reach
		emitFn = func(t fullTile) { c.checkTile(t) }
		stored []byte // the stored level-0 tile of the current group, if full
		group  = -1   // index into b.tiles of the current group, if computed
	)
	consume := func(b *scanBatch) error {
		for j := 0; j < b.len(); j++ {
			i := b.first + uint64(j)
			if j == b.errAt {
				return corruptEntry(i, "%v", b.err)
			}
			e := &b.ents[j]
			if e.Index != i {
				return corruptEntry(i, "holds index %d", e.Index)
			}
			h := b.leaves[j]

			// At a group start: the stored tile, and whether the group
			// can go into the tree whole.
			if i%tileWidth == 0 {
				stored, group = nil, -1
				if i+tileWidth <= c.size {
					if k := b.group(j); k >= 0 {
						stored = b.stored[k]
						for cpNext < len(cpSizes) && cpSizes[cpNext] <= i {
							cpNext++
						}
						if cpNext == len(cpSizes) || cpSizes[cpNext] >= i+tileWidth {
							group = k
						}
					} else {
						stored, _ = getFrom(c.r, tileKey(0, i/tileWidth))
					}
					if stored == nil {
						return corrupt("tile", "tile 0/%d is missing", i/tileWidth)
					}
				}
			}
			if stored != nil {
				o := (i % tileWidth) * 32
				if len(stored) != tileBytes {
					return corrupt("tile", "tile 0/%d: %d bytes", i/tileWidth, len(stored))
				}
				if !bytes.Equal(stored[o:o+32], h[:]) {
					if err := checkTile(stored); err != nil {
						return corrupt("tile", "tile 0/%d: %v", i/tileWidth, err)
					}
					return corruptEntry(i, "hash differs from the stored Merkle tree (changed entry)")
				}
			}

			// The chain link from entry i-1.
			if e.PrevHash != prev {
				return c.brokenLink(i, prev, h, stored != nil)
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
			prev = h

			// The tree: a whole group at its last entry, else leaf by leaf.
			if group >= 0 {
				if i%tileWidth == tileWidth-1 {
					if !bytes.Equal(stored, b.tiles[group]) {
						return corrupt("tile", "tile 0/%d: interior nodes differ from the entries'", i/tileWidth)
					}
					c.tileN++ // compared above
					c.st.appendTile(b.tiles[group], b.roots[group][:], func(t fullTile) {
						if t.level > 0 {
							c.checkTile(t)
						}
					})
				}
			} else {
				c.st.appendLeaf(bytes.Clone(h[:]), emitFn)
			}
			if c.tileErr != nil {
				return c.tileErr
			}
			if root, ok := c.cps[i+1]; ok {
				c.st.finish()
				if c.st.root != root {
					// Reported once the next link (or the tip) has vouched
					// for entry i, so that a changed entry is named first.
					badCP = i + 1
				}
			}
		}
		return b.stop
	}
	if err := runScan(scanOpts{}, produce, consume); err != nil {
		return err
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
