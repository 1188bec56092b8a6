package api

import (
	"context"
	"net/http"
	"time"
)

// NodeStatus is what GET /v1/node adds for the admin token (NodeInfo.Status):
// what `asp status` prints.
type NodeStatus struct {
	// Home is the node's home directory; PID its process id.
	Home string `json:"home"`
	PID  int    `json:"pid"`
	// Started is when the node started.
	Started time.Time `json:"started"`
	// API is the API's base URL.
	API string `json:"api"`
	// Listen are the configured libp2p listen multiaddrs (Addrs in
	// NodeInfo are the ones in use).
	Listen []string `json:"listen"`
	// DHTPeers is the size of the DHT routing table.
	DHTPeers int `json:"dhtPeers"`
	// Agents is the number of hosted agents.
	Agents int `json:"agents"`
	// Sessions and Commitments count the node's sessions and commitments
	// by state.
	Sessions    map[string]int `json:"sessions"`
	Commitments map[string]int `json:"commitments"`
	// LedgerSize is the number of ledger entries.
	LedgerSize uint64 `json:"ledgerSize"`
	// Checkpoint is the latest signed checkpoint (a signed note), empty
	// if none was signed yet; CheckpointSize is the ledger size it covers.
	Checkpoint     string `json:"checkpoint,omitempty"`
	CheckpointSize uint64 `json:"checkpointSize,omitempty"`
	// Witnesses are the organisations that witness this node's ledger:
	// the largest size each cosigned and when (GET /v1/witnesses has the
	// cosigned checkpoints).
	Witnesses []WitnessInfo `json:"witnesses,omitempty"`
	// LastBackup is the time of the last backup taken through the API,
	// if any since the node started.
	LastBackup *time.Time `json:"lastBackup,omitempty"`
}

// StatusReporter is an optional Backend extension: with it, GET /v1/node
// answers the admin token with NodeInfo.Status.
type StatusReporter interface {
	NodeStatus(ctx context.Context) (NodeStatus, error)
}

// nodeInfo answers GET /v1/node.
func nodeInfo(c *call) (any, error) {
	info, err := c.h.b.NodeInfo(c.ctx())
	if err != nil {
		return nil, err
	}
	if sr, ok := c.h.b.(StatusReporter); ok && c.p.Admin {
		st, err := sr.NodeStatus(c.ctx())
		if err != nil {
			return nil, err
		}
		info.Status = &st
	}
	return info, nil
}

// BackupResult is the answer of POST /v1/admin/backup.
type BackupResult struct {
	// Dir is the directory, under the node's home, holding the backup:
	// identity key, admin token, config, a snapshot of the ledger and of
	// the secret store, the signed checkpoint and a manifest. The caller
	// archives it and removes it.
	Dir    string `json:"dir"`
	PeerID string `json:"peerId"`
	// Size is the number of ledger entries in the backup; Checkpoint the
	// signed checkpoint of exactly that size (empty for an empty ledger).
	Size       uint64    `json:"size"`
	Checkpoint string    `json:"checkpoint,omitempty"`
	Time       time.Time `json:"time"`
}

// Backuper is an optional Backend extension serving POST /v1/admin/backup.
type Backuper interface {
	Backup(ctx context.Context) (BackupResult, error)
}

func backupRoute() *route {
	return &route{
		Method: "POST", Path: "/v1/admin/backup", Access: accessAdmin, Status: 200,
		Summary:  "Write a consistent backup of the node (ledger and secret store snapshots, identity, config, the signed checkpoint they correspond to) to a directory under its home.",
		Response: typeOf[BackupResult](),
		Errors:   []int{403, 501},
		json: func(c *call) (any, error) {
			b, ok := c.h.b.(Backuper)
			if !ok {
				return nil, Errorf(http.StatusNotImplemented, CodeUnsupported, "backups are not supported by this node")
			}
			if _, err := c.readBody(); err != nil {
				return nil, err
			}
			return b.Backup(c.ctx())
		},
	}
}
