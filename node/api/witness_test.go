package api

import (
	"context"
	"strings"
	"testing"

	"github.com/aspnode/asp/protocol"
)

var _ Witnesses = (*fake)(nil)

func (f *fake) Witnesses(ctx context.Context) (WitnessesInfo, error) {
	return WitnessesInfo{WitnessedBy: []WitnessInfo{{Org: "12D3KooWorg", Size: 3}}, Witnessing: []WitnessedLog{}, Equivocations: []EquivocationInfo{}}, nil
}

func (f *fake) InclusionProof(ctx context.Context, index, size uint64) (Proof, error) {
	if index >= size {
		return Proof{}, BadRequest("index %d not below size %d", index, size)
	}
	return Proof{Hashes: [][]byte{{1, 2}, {byte(index)}}}, nil
}

func (f *fake) ConsistencyProof(ctx context.Context, from, to uint64) (Proof, error) {
	return Proof{Hashes: [][]byte{{byte(from), byte(to)}}}, nil
}

// TestProofRoutes: the proofs' parameters are required and numeric, and
// the hashes come back base64.
func TestProofRoutes(t *testing.T) {
	h := newHarness(t)
	r := h.do("GET", "/v1/audit/proof/inclusion?index=1&size=4", buyerToken, "")
	h.expect(r, 200, "")
	if p := decode[Proof](t, r); len(p.Hashes) != 2 || p.Hashes[1][0] != 1 {
		t.Fatalf("inclusion: %+v", p)
	}
	if b := strings.TrimSpace(string(r.body)); b != `{"hashes":["AQI=","AQ=="]}` {
		t.Fatalf("inclusion body %q", r.body)
	}
	for _, path := range []string{
		"/v1/audit/proof/inclusion?index=1",
		"/v1/audit/proof/inclusion?index=x&size=4",
		"/v1/audit/proof/inclusion?index=4&size=4",
		"/v1/audit/proof/consistency?from=1",
		"/v1/audit/proof/consistency?from=-1&to=3",
	} {
		h.expect(h.do("GET", path, buyerToken, ""), 400, CodeBadRequest)
	}
	w := decode[WitnessesInfo](t, h.do("GET", "/v1/witnesses", adminToken, ""))
	if len(w.WitnessedBy) != 1 || w.WitnessedBy[0].Size != 3 {
		t.Fatalf("witnesses: %+v", w)
	}
}

// TestEquivocationIsForbidden: a refusal for equivocation is a 403 that
// says it will not change.
func TestEquivocationIsForbidden(t *testing.T) {
	e := ErrorFor(&Error{Code: protocol.CodeEquivocation, Message: "x"})
	if e.Status != 403 || protocol.Retryable(e.Code) {
		t.Fatalf("equivocation: %+v", e)
	}
}
