package client

import (
	"context"
	"net/http"
	"strconv"

	"github.com/aspnode/asp/node/api"
)

// Witnesses returns GET /v1/witnesses (admin): who witnesses the node's
// ledger and up to which size, whose ledgers it witnesses, and the
// equivocation proofs it holds.
func (c *Client) Witnesses(ctx context.Context) (api.WitnessesInfo, error) {
	var v api.WitnessesInfo
	return v, c.Do(ctx, http.MethodGet, "/v1/witnesses", nil, &v)
}

// InclusionProof returns the RFC 6962 inclusion proof of entry index in
// the node's ledger tree of size entries (any token). Check it with
// ledger.VerifyInclusion against a checkpoint of that size.
func (c *Client) InclusionProof(ctx context.Context, index, size uint64) ([][]byte, error) {
	var v api.Proof
	path := "/v1/audit/proof/inclusion?index=" + strconv.FormatUint(index, 10) + "&size=" + strconv.FormatUint(size, 10)
	return v.Hashes, c.Do(ctx, http.MethodGet, path, nil, &v)
}

// ConsistencyProof returns the RFC 6962 consistency proof between the
// node's ledger trees of sizes from and to (any token). Check it with
// ledger.VerifyConsistency.
func (c *Client) ConsistencyProof(ctx context.Context, from, to uint64) ([][]byte, error) {
	var v api.Proof
	path := "/v1/audit/proof/consistency?from=" + strconv.FormatUint(from, 10) + "&to=" + strconv.FormatUint(to, 10)
	return v.Hashes, c.Do(ctx, http.MethodGet, path, nil, &v)
}
