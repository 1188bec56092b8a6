package ledger

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// InclusionProof returns the RFC 6962 inclusion proof of entry index in the
// tree of the given size (the size of some checkpoint). Requires
// index < size ≤ Size(). Check it with VerifyInclusion.
func (l *Ledger) InclusionProof(index, size uint64) ([][]byte, error) {
	if index >= size {
		return nil, fmt.Errorf("inclusion proof: index %d not below size %d", index, size)
	}
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, fmt.Errorf("inclusion proof: %w", err)
	}
	return l.buildProof(nodes, size)
}

// ConsistencyProof returns the RFC 6962 consistency proof between the trees
// of sizes from and to. Requires from ≤ to ≤ Size(). Check it with
// VerifyConsistency.
func (l *Ledger) ConsistencyProof(from, to uint64) ([][]byte, error) {
	if from > to {
		return nil, fmt.Errorf("consistency proof: size %d > %d", from, to)
	}
	nodes, err := proof.Consistency(from, to)
	if err != nil {
		return nil, fmt.Errorf("consistency proof: %w", err)
	}
	return l.buildProof(nodes, to)
}

func (l *Ledger) buildProof(nodes proof.Nodes, size uint64) ([][]byte, error) {
	if err := l.rlock(); err != nil {
		return nil, err
	}
	defer l.runlock()
	st := l.state()
	if size > st.size {
		return nil, fmt.Errorf("proof: size %d beyond the log's %d entries: %w", size, st.size, ErrNotFound)
	}
	hashes := make([][]byte, len(nodes.IDs))
	// Nodes in stored level-0 tiles, grouped so that each tile is read once.
	var pending map[uint64][]int
	for i, id := range nodes.IDs {
		if err := checkNode(st, id); err != nil {
			return nil, fmt.Errorf("proof: %w", err)
		}
		lvl, r, n, pos, stored := locate(st, id)
		switch {
		case !stored:
			e := st.edge[lvl][r]
			if pos >= uint64(len(e)) {
				return nil, fmt.Errorf("proof: node %d/%d missing from the edge tile", id.Level, id.Index)
			}
			hashes[i] = e[pos]
		case lvl > 0:
			t, err := l.upperTile(uint8(lvl), n)
			if err != nil {
				return nil, fmt.Errorf("proof: %w", err)
			}
			o := (tileOffset(r) + int(pos)) * 32
			hashes[i] = t[o : o+32]
		default:
			if pending == nil {
				pending = map[uint64][]int{}
			}
			pending[n] = append(pending[n], i)
		}
	}
	for n, is := range pending {
		v, c, err := l.db.Get(tileKey(0, n))
		if err != nil || len(v) != tileBytes {
			if c != nil {
				c.Close()
			}
			return nil, fmt.Errorf("proof: %w", corrupt("tile", "tile 0/%d missing or short", n))
		}
		for _, i := range is {
			_, r, _, pos, _ := locate(st, nodes.IDs[i])
			o := (tileOffset(r) + int(pos)) * 32
			hashes[i] = bytes.Clone(v[o : o+32])
		}
		c.Close()
	}
	return nodes.Rehash(hashes, hashChildren)
}

// checkNode checks that id is a perfect node of the tree of state st.
func checkNode(st *treeState, id compact.NodeID) error {
	if id.Level >= 64 || (id.Index+1)<<id.Level > st.size || (id.Index+1)<<id.Level == 0 {
		return fmt.Errorf("node %d/%d is not in the tree of size %d", id.Level, id.Index, st.size)
	}
	return nil
}

// locate finds a node: its tile level, sub-level, tile index and position
// within the sub-level, and whether the tile is stored (full) or an edge.
func locate(st *treeState, id compact.NodeID) (lvl, r uint, n, pos uint64, stored bool) {
	lvl, r = id.Level/tileHeight, id.Level%tileHeight
	n = id.Index >> (tileHeight - r)
	pos = id.Index - n<<(tileHeight-r)
	full := st.size >> (tileHeight * lvl) >> tileHeight
	return lvl, r, n, pos, n < full
}

// upperTileCacheSize bounds the cached tiles of levels 1 and up: one per
// 65,536 entries at level 1, so 1,024 tiles (16 MiB) cover 2^26 entries.
const upperTileCacheSize = 1024

// upperTile returns a stored tile of level 1 or more. Such tiles are few and
// on every proof's path, so they are cached (full tiles never change).
func (l *Ledger) upperTile(level uint8, n uint64) ([]byte, error) {
	key := [2]uint64{uint64(level), n}
	l.tiles.Lock()
	t, ok := l.tiles.m[key]
	l.tiles.Unlock()
	if ok {
		return t, nil
	}
	t, err := l.get(tileKey(level, n))
	if errors.Is(err, ErrNotFound) || (err == nil && len(t) != tileBytes) {
		return nil, corrupt("tile", "tile %d/%d missing or short", level, n)
	}
	if err != nil {
		return nil, err
	}
	l.tiles.Lock()
	if l.tiles.m == nil || len(l.tiles.m) >= upperTileCacheSize {
		l.tiles.m = map[[2]uint64][]byte{}
	}
	l.tiles.m[key] = t
	l.tiles.Unlock()
	return t, nil
}

// VerifyInclusion checks that leafHash (LeafHash of an encoded entry) is at
// index in the tree of the given size and root. It needs no ledger: receipts,
// witnesses and bundle readers call it with a proof and a checkpoint.
func VerifyInclusion(index, size uint64, leafHash [32]byte, proof [][]byte, root [32]byte) error {
	return verifyInclusion(index, size, leafHash, proof, root)
}

func verifyInclusion(index, size uint64, leafHash [32]byte, p [][]byte, root [32]byte) error {
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, size, leafHash[:], p, root[:]); err != nil {
		return fmt.Errorf("inclusion proof: %w", err)
	}
	return nil
}

// VerifyConsistency checks that the tree of size2 and root2 extends the tree
// of size1 and root1. It needs no ledger.
func VerifyConsistency(size1, size2 uint64, p [][]byte, root1, root2 [32]byte) error {
	if size1 == 0 && root1 != emptyRoot {
		return fmt.Errorf("consistency proof: root of the empty tree is wrong")
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, size1, size2, p, root1[:], root2[:]); err != nil {
		return fmt.Errorf("consistency proof: %w", err)
	}
	return nil
}
