package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"testing"
)

func leafHash(i uint64) []byte {
	return saltedLeaf(0, i)
}

func saltedLeaf(salt byte, i uint64) []byte {
	var b [9]byte
	b[0] = salt
	binary.BigEndian.PutUint64(b[1:], i)
	h := sha256.Sum256(b[:])
	return h[:]
}

// grow appends leaves [from, to) to s; leaves from base on are salted, so
// that two clones of one state grow different trees.
func grow(s *treeState, from, to uint64) { growSalted(s, 0, from, to) }

func growSalted(s *treeState, salt byte, from, to uint64) {
	for i := from; i < to; i++ {
		s.appendLeaf(saltedLeaf(salt, i), func(fullTile) {})
	}
}

// snapshot copies what a reader of s can see: its edge tiles and compact range.
func snapshot(t *testing.T, s *treeState) (edge [maxTileLevels]edgeTile, rng [][]byte) {
	t.Helper()
	for l := range s.edge {
		for r := range s.edge[l] {
			for _, h := range s.edge[l][r] {
				edge[l][r] = append(edge[l][r], append([]byte(nil), h...))
			}
		}
	}
	for _, h := range s.rng.Hashes() {
		rng = append(rng, append([]byte(nil), h...))
	}
	return edge, rng
}

// TestCloneSharing checks that appending to clones never changes what the
// cloned state holds, for the first clone (which shares the edge arrays) and
// for any later clone of the same state (which copies), across tile
// boundaries.
func TestCloneSharing(t *testing.T) {
	for _, base := range []uint64{0, 1, 100, 255, 256, 300, 65535, 65536 + 17} {
		s := newTreeState()
		grow(s, 0, base)
		edge0, rng0 := snapshot(t, s)

		a, b := s.clone(), s.clone() // b must not share with a
		growSalted(a, 'a', base, base+5)
		growSalted(b, 'b', base, base+300)
		growSalted(a.clone(), 'a', base+5, base+600)

		edge1, rng1 := snapshot(t, s)
		if len(rng0) != len(rng1) {
			t.Fatalf("base %d: compact range of the cloned state changed", base)
		}
		for i := range rng0 {
			if string(rng0[i]) != string(rng1[i]) {
				t.Fatalf("base %d: compact range of the cloned state changed", base)
			}
		}
		sameEdges(t, fmt.Sprintf("base %d: original", base), edge0, edge1)
		// Each clone must equal a state grown directly to its size.
		for name, c := range map[string]struct {
			st   *treeState
			salt byte
			size uint64
		}{"first clone": {a, 'a', base + 5}, "second clone": {b, 'b', base + 300}} {
			if err := checkStateInvariants(c.st); err != nil {
				t.Fatalf("base %d, %s: %v", base, name, err)
			}
			want := newTreeState()
			grow(want, 0, base)
			growSalted(want, c.salt, base, c.size)
			wantEdge, _ := snapshot(t, want)
			gotEdge, _ := snapshot(t, c.st)
			sameEdges(t, fmt.Sprintf("base %d: %s", base, name), wantEdge, gotEdge)
		}
	}
}

func sameEdges(t *testing.T, what string, want, got [maxTileLevels]edgeTile) {
	t.Helper()
	for l := range want {
		for r := range want[l] {
			if len(want[l][r]) != len(got[l][r]) {
				t.Fatalf("%s: edge[%d][%d] has %d hashes, want %d", what, l, r, len(got[l][r]), len(want[l][r]))
			}
			for i := range want[l][r] {
				if string(want[l][r][i]) != string(got[l][r][i]) {
					t.Fatalf("%s: edge[%d][%d][%d] differs", what, l, r, i)
				}
			}
		}
	}
}
