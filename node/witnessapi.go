package node

import (
	"context"
	"slices"
	"strings"

	"github.com/aspnode/asp/ledger/witness"
	"github.com/aspnode/asp/node/api"
)

var _ api.Witnesses = (*Node)(nil)

// Witnesses implements api.Witnesses.
func (n *Node) Witnesses(ctx context.Context) (api.WitnessesInfo, error) {
	out := api.WitnessesInfo{WitnessedBy: []api.WitnessInfo{}, Witnessing: []api.WitnessedLog{}, Equivocations: []api.EquivocationInfo{}}
	wi := n.wit
	if wi == nil {
		return out, nil
	}
	wi.mu.Lock()
	for _, p := range wi.rounds {
		w := api.WitnessInfo{Org: p.org, Size: p.size, CosignedAt: p.at, LastError: p.lastErr, LastRound: p.tried}
		if p.cp != nil {
			w.Checkpoint = string(witness.WithCosignature(p.cp, p.cosig))
		}
		out.WitnessedBy = append(out.WitnessedBy, w)
	}
	for _, h := range wi.proofs {
		out.Equivocations = append(out.Equivocations, api.EquivocationInfo{Org: h.org, Proof: h.proof, At: h.at})
	}
	wi.mu.Unlock()
	err := wi.store.Each(func(origin string, st witness.State) bool {
		out.Witnessing = append(out.Witnessing, api.WitnessedLog{Origin: origin, Size: st.Size, Checkpoint: string(st.Checkpoint)})
		return true
	})
	if err != nil {
		return api.WitnessesInfo{}, err
	}
	slices.SortFunc(out.WitnessedBy, func(a, b api.WitnessInfo) int { return strings.Compare(a.Org, b.Org) })
	slices.SortFunc(out.Equivocations, func(a, b api.EquivocationInfo) int { return strings.Compare(a.Org, b.Org) })
	return out, nil
}

// InclusionProof implements api.Witnesses.
func (n *Node) InclusionProof(ctx context.Context, index, size uint64) (api.Proof, error) {
	if index >= size || size > n.led.Size() {
		return api.Proof{}, badRequest("index %d and size %d: want index < size ≤ %d", index, size, n.led.Size())
	}
	h, err := n.led.InclusionProof(index, size)
	if err != nil {
		return api.Proof{}, err
	}
	return api.Proof{Hashes: nonNil(h)}, nil
}

// ConsistencyProof implements api.Witnesses.
func (n *Node) ConsistencyProof(ctx context.Context, from, to uint64) (api.Proof, error) {
	if from > to || to > n.led.Size() {
		return api.Proof{}, badRequest("from %d and to %d: want from ≤ to ≤ %d", from, to, n.led.Size())
	}
	h, err := n.led.ConsistencyProof(from, to)
	if err != nil {
		return api.Proof{}, err
	}
	return api.Proof{Hashes: nonNil(h)}, nil
}

func nonNil(h [][]byte) [][]byte {
	if h == nil {
		return [][]byte{}
	}
	return h
}
