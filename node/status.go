package node

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/node/api"
)

// opsState is what the node keeps for its operator's status beside its
// tables.
type opsState struct {
	started time.Time

	mu         sync.Mutex
	lastBackup time.Time
	scheduled  int // scheduled backups written
}

// NodeStatus implements api.StatusReporter: GET /v1/node for the admin
// token, what asp status prints.
func (n *Node) NodeStatus(ctx context.Context) (api.NodeStatus, error) {
	st := api.NodeStatus{
		Home:        n.cfg.Home,
		PID:         os.Getpid(),
		Started:     n.ops.started,
		API:         n.apiURL,
		Listen:      n.cfg.Listen,
		Agents:      len(n.agents.list()),
		Sessions:    map[string]int{},
		Commitments: map[string]int{},
	}
	if n.host != nil && n.host.DHT() != nil {
		st.DHTPeers = n.host.DHT().RoutingTable().Size()
	}
	admin := api.Principal{Admin: true}
	sessions, err := n.Sessions(ctx, admin)
	if err != nil {
		return api.NodeStatus{}, err
	}
	for _, s := range sessions {
		st.Sessions[s.State]++
	}
	commitments, err := n.Commitments(ctx, admin)
	if err != nil {
		return api.NodeStatus{}, err
	}
	for _, c := range commitments {
		st.Commitments[c.State]++
	}
	st.LedgerSize = n.led.Size()
	cp, err := n.led.LatestCheckpoint()
	switch {
	case err == nil:
		st.Checkpoint = string(cp)
		st.CheckpointSize = checkpointSize(cp)
	case !errors.Is(err, ledger.ErrNotFound):
		return api.NodeStatus{}, err
	}
	w, err := n.Witnesses(ctx)
	if err != nil {
		return api.NodeStatus{}, err
	}
	for _, wi := range w.WitnessedBy {
		wi.Checkpoint = ""
		st.Witnesses = append(st.Witnesses, wi)
	}
	n.ops.mu.Lock()
	if !n.ops.lastBackup.IsZero() {
		t := n.ops.lastBackup
		st.LastBackup = &t
	}
	n.ops.mu.Unlock()
	return st, nil
}

// checkpointSize reads the size line of a signed checkpoint note (origin,
// size, root hash, ...), 0 if it has none.
func checkpointSize(note []byte) uint64 {
	lines := strings.SplitN(string(note), "\n", 3)
	if len(lines) < 2 {
		return 0
	}
	v, _ := strconv.ParseUint(lines[1], 10, 64)
	return v
}

var _ api.StatusReporter = (*Node)(nil)
