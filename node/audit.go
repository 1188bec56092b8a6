package node

import (
	"context"
	"encoding/hex"

	"github.com/aspnode/asp/node/api"
)

// The audit chain as the API serves it: signed checkpoints and entries.

// Checkpoint implements api.Backend.
func (n *Node) Checkpoint(ctx context.Context) ([]byte, error) {
	return n.led.Checkpoint(ctx)
}

// Entries implements api.Backend.
func (n *Node) Entries(ctx context.Context, from, limit uint64) (api.EntriesPage, error) {
	size := n.led.Size()
	page := api.EntriesPage{Size: size, Entries: []api.EntryInfo{}}
	if from >= size {
		return page, nil
	}
	ents, err := n.led.Entries(from, limit)
	if err != nil {
		return page, err
	}
	for _, e := range ents {
		h := e.Hash()
		page.Entries = append(page.Entries, api.EntryInfo{
			Index: e.Index, Time: e.Time, Kind: e.Kind.String(), Session: e.Session, Commitment: e.Commitment,
			PrevHash: hex.EncodeToString(e.PrevHash[:]), Hash: hex.EncodeToString(h[:]), Body: e.Body,
		})
	}
	return page, nil
}
