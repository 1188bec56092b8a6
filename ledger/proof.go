package ledger

import (
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
	tiles := make(map[[2]uint64][]byte, 4)
	hashes := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		h, err := l.nodeHash(st, id, tiles)
		if err != nil {
			return nil, fmt.Errorf("proof: %w", err)
		}
		hashes[i] = h
	}
	return nodes.Rehash(hashes, hashChildren)
}

// nodeHash returns the hash of a perfect node of the tree of state st.
// REQUIRES: closeMu shared.
func (l *Ledger) nodeHash(st *treeState, id compact.NodeID, tiles map[[2]uint64][]byte) ([]byte, error) {
	lvl, r := id.Level/tileHeight, id.Level%tileHeight
	if id.Level >= 64 || (id.Index+1)<<id.Level > st.size || (id.Index+1)<<id.Level == 0 {
		return nil, fmt.Errorf("node %d/%d is not in the tree of size %d", id.Level, id.Index, st.size)
	}
	n := id.Index >> (tileHeight - r) // tile index
	pos := id.Index - n<<(tileHeight-r)
	full := st.size >> (tileHeight * lvl) >> tileHeight
	if n >= full {
		e := st.edge[lvl][r]
		if pos >= uint64(len(e)) {
			return nil, fmt.Errorf("node %d/%d missing from the edge tile", id.Level, id.Index)
		}
		return e[pos], nil
	}
	key := [2]uint64{uint64(lvl), n}
	t, ok := tiles[key]
	if !ok {
		var err error
		t, err = l.get(tileKey(uint8(lvl), n))
		if errors.Is(err, ErrNotFound) || (err == nil && len(t) != tileBytes) {
			return nil, corrupt("tile", "tile %d/%d missing or short", lvl, n)
		}
		if err != nil {
			return nil, err
		}
		tiles[key] = t
	}
	o := (tileOffset(r) + int(pos)) * 32
	return t[o : o+32], nil
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
