package api

import (
	"context"
	"time"
)

// Witnessing and proofs (docs/node.md "Witnessing"): who witnesses this
// node's ledger, whose ledgers it witnesses, the equivocation proofs it
// holds, and the ledger's inclusion and consistency proofs.

// Witnesses is an optional Backend extension serving GET /v1/witnesses
// and the audit proofs.
type Witnesses interface {
	// Witnesses reports the node's witnessing.
	Witnesses(ctx context.Context) (WitnessesInfo, error)
	// InclusionProof proves entry index in the tree of size entries.
	InclusionProof(ctx context.Context, index, size uint64) (Proof, error)
	// ConsistencyProof proves the tree of size from a prefix of the tree
	// of size to.
	ConsistencyProof(ctx context.Context, from, to uint64) (Proof, error)
}

// WitnessesInfo is the answer of GET /v1/witnesses.
type WitnessesInfo struct {
	// WitnessedBy are the organisations asked to witness this node's
	// ledger, with the latest checkpoint each cosigned.
	WitnessedBy []WitnessInfo `json:"witnessedBy"`
	// Witnessing are the ledgers this node witnesses, with the latest
	// checkpoint it cosigned of each.
	Witnessing []WitnessedLog `json:"witnessing"`
	// Equivocations are the equivocation proofs this node holds.
	Equivocations []EquivocationInfo `json:"equivocations"`
}

// WitnessInfo is one witness of this node's ledger.
type WitnessInfo struct {
	Org string `json:"org"`
	// Size is the largest size of our ledger it cosigned (0: none yet).
	Size uint64 `json:"size"`
	// CosignedAt is the time of that cosignature.
	CosignedAt time.Time `json:"cosignedAt,omitzero"`
	// Checkpoint is our checkpoint with its cosignature (signed note).
	Checkpoint string `json:"checkpoint,omitempty"`
	// LastError says why the latest round failed, if it did.
	LastError string `json:"lastError,omitempty"`
	// LastRound is when the latest round ended.
	LastRound time.Time `json:"lastRound,omitzero"`
}

// WitnessedLog is a ledger this node witnesses.
type WitnessedLog struct {
	Origin string `json:"origin"`
	Size   uint64 `json:"size"`
	// Checkpoint is the latest checkpoint cosigned, with the cosignature.
	Checkpoint string `json:"checkpoint"`
}

// EquivocationInfo is an equivocation proof held.
type EquivocationInfo struct {
	Org string `json:"org"`
	// Proof is the proof (witness.EncodeEquivocation), base64.
	Proof []byte    `json:"proof"`
	At    time.Time `json:"at"`
}

// Proof is an RFC 6962 Merkle proof: its hashes, base64.
type Proof struct {
	Hashes [][]byte `json:"hashes"`
}

// InclusionQuery is the query of GET /v1/audit/proof/inclusion.
type InclusionQuery struct {
	// Index is the entry's index.
	Index uint64 `json:"index"`
	// Size is the tree size the proof is against (index < size ≤ the ledger's size).
	Size uint64 `json:"size"`
}

// ConsistencyQuery is the query of GET /v1/audit/proof/consistency.
type ConsistencyQuery struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
}

func witnesses(c *call) (Witnesses, error) {
	return extension[Witnesses](c, "this node does not witness")
}

// twoParams reads two required unsigned query parameters.
func twoParams(c *call, a, b string) (uint64, uint64, error) {
	q := c.r.URL.Query()
	if q.Get(a) == "" || q.Get(b) == "" {
		return 0, 0, BadRequest("%s and %s are required", a, b)
	}
	x, err := uintParam(q, a, 0, 0)
	if err != nil {
		return 0, 0, err
	}
	y, err := uintParam(q, b, 0, 0)
	return x, y, err
}

func witnessRoutes() []*route {
	return []*route{
		{
			Method: "GET", Path: "/v1/witnesses", Access: accessAdmin, Status: 200,
			Summary:  "Who witnesses this node's ledger, whose ledgers it witnesses, and the equivocation proofs it holds.",
			Response: typeOf[WitnessesInfo](),
			Errors:   []int{403, 501},
			json: func(c *call) (any, error) {
				w, err := witnesses(c)
				if err != nil {
					return nil, err
				}
				return w.Witnesses(c.ctx())
			},
		},
		{
			Method: "GET", Path: "/v1/audit/proof/inclusion", Access: accessAny, Status: 200,
			Summary:  "The inclusion proof of an entry in the ledger's tree of a given size.",
			Query:    typeOf[InclusionQuery](),
			Response: typeOf[Proof](),
			Errors:   []int{400, 501},
			json: func(c *call) (any, error) {
				w, err := witnesses(c)
				if err != nil {
					return nil, err
				}
				index, size, err := twoParams(c, "index", "size")
				if err != nil {
					return nil, err
				}
				return w.InclusionProof(c.ctx(), index, size)
			},
		},
		{
			Method: "GET", Path: "/v1/audit/proof/consistency", Access: accessAny, Status: 200,
			Summary:  "The consistency proof between two sizes of the ledger's tree.",
			Query:    typeOf[ConsistencyQuery](),
			Response: typeOf[Proof](),
			Errors:   []int{400, 501},
			json: func(c *call) (any, error) {
				w, err := witnesses(c)
				if err != nil {
					return nil, err
				}
				from, to, err := twoParams(c, "from", "to")
				if err != nil {
					return nil, err
				}
				return w.ConsistencyProof(c.ctx(), from, to)
			},
		},
	}
}
