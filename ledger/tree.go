package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sync/atomic"

	"github.com/transparency-dev/merkle/compact"
)

// The Merkle tree is stored in tiles after C2SP tlog-tiles: a tile at tile
// level L and index N holds the 256 hashes at tree level 8L with indices
// 256N … 256N+255. A stored tile also holds the hashes of the seven levels
// inside it (128, 64, … 2 hashes at tree levels 8L+1 … 8L+7), so that any
// node of a proof is one read away. Only full tiles are stored; the partial
// tiles along the right edge of the tree are kept in memory and rebuilt by
// Open from at most 255 entries and 255 full tiles per level.
const (
	tileHeight    = 8
	tileWidth     = 1 << tileHeight
	maxTileLevels = 64 / tileHeight
	// tileHashes is the number of hashes in a stored (full) tile.
	tileHashes = 2*tileWidth - 2
	// tileBytes is the size of a stored tile.
	tileBytes = tileHashes * 32
)

// tileOffset returns the position of the first hash of sub-level r (0 ≤ r <
// tileHeight) within a stored tile.
func tileOffset(r uint) int { return 2*tileWidth - (2*tileWidth)>>r }

var rangeFactory = &compact.RangeFactory{Hash: hashChildren}

// edgeTile holds the nodes of one partial tile on the right edge of the tree:
// edgeTile[r] are the hashes at sub-level r, in index order.
type edgeTile [tileHeight][][]byte

// treeState is the Merkle state after some number of entries. A published
// treeState (Ledger.mu.state) is never modified; the committer works on a
// clone.
type treeState struct {
	size uint64
	// INVARIANT: tip is the leaf hash of entry size-1, zero when size is 0.
	tip [32]byte
	// INVARIANT: rng is the compact range [0, size) and root its root hash
	// (emptyRoot when size is 0). The tree head stores only the root; Open
	// derives rng from the edge tiles.
	rng  *compact.Range
	root [32]byte
	// INVARIANT: edge[L] holds the nodes of the partial tile at tile level L:
	// the size>>(8L) & 255 last hashes at tree level 8L and the nodes above
	// them within the tile.
	edge [maxTileLevels]edgeTile
	// cloned is set by the first clone, which shares edge's arrays.
	cloned atomic.Bool
}

func newTreeState() *treeState {
	return &treeState{rng: rangeFactory.NewEmptyRange(0), root: emptyRoot}
}

// clone returns a copy to append to. It does not copy root, which finish
// recomputes: the syncer may be computing s.root meanwhile.
//
// The first clone of a state shares the edge tiles' backing arrays: the
// clone only appends beyond s's lengths, which s never reads, and a
// published state is never appended to. Any later clone of the same state
// would append over the first one's hashes, so it copies.
func (s *treeState) clone() *treeState {
	c := &treeState{size: s.size, tip: s.tip}
	c.rng, _ = rangeFactory.NewRange(0, s.size, append([][]byte(nil), s.rng.Hashes()...))
	if !s.cloned.Swap(true) {
		c.edge = s.edge
		return c
	}
	for l := range s.edge {
		for r := range s.edge[l] {
			if len(s.edge[l][r]) > 0 {
				c.edge[l][r] = append(make([][]byte, 0, len(s.edge[l][r])+8), s.edge[l][r]...)
			}
		}
	}
	return c
}

// fullTile is a tile completed by an append, ready to be stored.
type fullTile struct {
	level uint8
	index uint64
	data  []byte
}

// appendLeaf adds a leaf hash to the tree, calling emit for each tile that
// it completes.
func (s *treeState) appendLeaf(h []byte, emit func(fullTile)) {
	s.rng.Append(h, s.visitor(emit))
	s.size++
	copy(s.tip[:], h)
}

// visitor returns the compact range visitor that files new nodes into the
// edge tiles and emits each tile it completes.
func (s *treeState) visitor(emit func(fullTile)) compact.VisitFn {
	return func(id compact.NodeID, hash []byte) {
		l, r := id.Level/tileHeight, id.Level%tileHeight
		e := &s.edge[l]
		e[r] = append(e[r], hash)
		if r == tileHeight-1 && id.Index&1 == 1 {
			// The tile's last node: the tile is full.
			data := make([]byte, 0, tileBytes)
			for q := range e {
				for _, x := range e[q] {
					data = append(data, x...)
				}
				e[q] = e[q][:0:0]
			}
			emit(fullTile{level: uint8(l), index: id.Index >> 1, data: data})
		}
	}
}

// appendTile adds 256 leaves at once, given as the full level-0 tile they
// form (as computeTile returns it) and its root. Requires size to be a
// multiple of 256. emit receives the tile itself, then any tile above it
// that the root completes.
func (s *treeState) appendTile(data []byte, root []byte, emit func(fullTile)) {
	n := s.size >> tileHeight
	emit(fullTile{level: 0, index: n, data: data})
	visit := s.visitor(emit)
	id := compact.NewNodeID(tileHeight, n)
	visit(id, root)
	other, _ := rangeFactory.NewRange(s.size, s.size+tileWidth, [][]byte{root})
	if err := s.rng.AppendRange(other, visit); err != nil {
		panic(err) // unreachable: size is a multiple of 256
	}
	s.size += tileWidth
	copy(s.tip[:], data[(tileWidth-1)*32:tileWidth*32])
}

// computeTile returns the full level-0 tile over 256 leaf hashes (the
// leaves, then the seven levels above them) and its root, the level-8 node.
// It writes into data, which must have room for tileBytes.
func computeTile(leaves [][32]byte, data []byte) (tile []byte, root [32]byte) {
	data = data[:tileBytes]
	for i := range leaves[:tileWidth] {
		copy(data[i*32:], leaves[i][:])
	}
	var buf [65]byte
	buf[0] = 1
	for r := uint(1); r < tileHeight; r++ {
		lo, hi := tileOffset(r-1), tileOffset(r)
		for i := 0; i < tileWidth>>r; i++ {
			copy(buf[1:], data[(lo+2*i)*32:(lo+2*i+2)*32])
			h := sha256.Sum256(buf[:])
			copy(data[(hi+i)*32:], h[:])
		}
	}
	o := tileOffset(tileHeight-1) * 32
	copy(buf[1:], data[o:o+64])
	root = sha256.Sum256(buf[:])
	return data, root
}

// finish recomputes the root after a run of appendLeaf calls.
func (s *treeState) finish() {
	if s.size == 0 {
		s.root = emptyRoot
		return
	}
	r, _ := s.rng.GetRootHash(nil)
	copy(s.root[:], r)
}

// treeHeadLen is the size of the stored tree head.
const treeHeadLen = 1 + 8 + 32 + 32

// marshal encodes the tree head stored under keyTree: version 1, size, tip
// (leaf hash of the last entry) and root. The compact range is not stored:
// Open derives it from the edge tiles and checks it against the root.
func (s *treeState) marshal() []byte {
	b := make([]byte, 0, treeHeadLen)
	b = append(b, 1)
	b = binary.BigEndian.AppendUint64(b, s.size)
	b = append(b, s.tip[:]...)
	return append(b, s.root[:]...)
}

// unmarshalTreeHead parses a stored tree head into a state without compact
// range or edges.
func unmarshalTreeHead(b []byte) (*treeState, error) {
	if len(b) != treeHeadLen || b[0] != 1 {
		return nil, corrupt("tree", "tree head of %d bytes is malformed", len(b))
	}
	s := &treeState{size: binary.BigEndian.Uint64(b[1:])}
	copy(s.tip[:], b[9:41])
	copy(s.root[:], b[41:73])
	return s, nil
}

// tileRoot returns the root of a stored full tile: the hash of its two
// sub-level 7 nodes, which is a node at the next tile level.
func tileRoot(data []byte) []byte {
	o := tileOffset(tileHeight-1) * 32
	return hashChildren(data[o:o+32], data[o+32:o+64])
}

// checkTile verifies that a stored tile is internally consistent: every
// node above sub-level 0 is the hash of its children.
func checkTile(data []byte) error {
	if len(data) != tileBytes {
		return fmt.Errorf("tile of %d bytes, want %d", len(data), tileBytes)
	}
	for r := uint(1); r < tileHeight; r++ {
		lo, hi := tileOffset(r-1), tileOffset(r)
		for i := 0; i < tileWidth>>r; i++ {
			l := data[(lo+2*i)*32 : (lo+2*i+1)*32]
			rr := data[(lo+2*i+1)*32 : (lo+2*i+2)*32]
			if !bytes.Equal(hashChildren(l, rr), data[(hi+i)*32:(hi+i+1)*32]) {
				return fmt.Errorf("tile node %d at sub-level %d is not the hash of its children", i, r)
			}
		}
	}
	return nil
}

// compactFromEdges returns the compact range hashes of [0, size) as found in
// the edge tiles (highest level first, as compact.Range orders them).
func (s *treeState) compactFromEdges() ([][]byte, error) {
	var out [][]byte
	for k := 63; k >= 0; k-- {
		if s.size>>uint(k)&1 == 0 {
			continue
		}
		l, r := k/tileHeight, k%tileHeight
		e := s.edge[l][r]
		if len(e) == 0 {
			return nil, fmt.Errorf("edge tile %d has no node at sub-level %d", l, r)
		}
		out = append(out, e[len(e)-1])
	}
	return out, nil
}
