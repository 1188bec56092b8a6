package api

import (
	"context"
	"encoding/json"
	"testing"
)

// The fake backend's disputes: one dispute, dsp_1, on cmt_1.

func (f *fake) DisputePolicy(ctx context.Context) (DisputePolicy, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.policy, nil
}

func (f *fake) SetDisputePolicy(ctx context.Context, p DisputePolicy) (DisputePolicy, error) {
	if p.OnBreach == "explode" {
		return DisputePolicy{}, BadRequest("onBreach %q", p.OnBreach)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.policy = p
	return p, nil
}

func (f *fake) FileDispute(ctx context.Context, agent, id string, req FileDisputeRequest) (DisputeFiled, error) {
	f.mu.Lock()
	f.lastAct = []string{agent, id, "file:" + req.Grounds}
	f.mu.Unlock()
	if id != "cmt_1" || (agent != buyer && agent != vendor) {
		return DisputeFiled{}, NotFound("no commitment %s", id)
	}
	return DisputeFiled{DisputeID: "dsp_1"}, nil
}

func (f *fake) Disputes(ctx context.Context, p Principal) ([]DisputeInfo, error) {
	if p.Admin || p.Agent == buyer || p.Agent == vendor {
		return []DisputeInfo{{DisputeID: "dsp_1", CommitmentID: "cmt_1", State: "FILED"}}, nil
	}
	return nil, nil
}

func (f *fake) Dispute(ctx context.Context, p Principal, id string) (DisputeInfo, error) {
	if id != "dsp_1" || !(p.Admin || p.Agent == buyer || p.Agent == vendor) {
		return DisputeInfo{}, NotFound("no dispute %s", id)
	}
	return DisputeInfo{DisputeID: id, CommitmentID: "cmt_1", State: "FILED"}, nil
}

func (f *fake) DisputeStep(ctx context.Context, agent, id, kind string, req DisputeStepRequest) (DisputeInfo, error) {
	f.mu.Lock()
	f.lastAct = []string{agent, id, kind}
	f.mu.Unlock()
	if id != "dsp_1" {
		return DisputeInfo{}, NotFound("no dispute %s", id)
	}
	return DisputeInfo{DisputeID: id, CommitmentID: "cmt_1", State: "REMEDY_OFFERED"}, nil
}

// TestDisputeRoutes: the filing form answers 201 {disputeId}, the older
// form still goes to CommitmentAction (200); steps reach the backend as
// their kind; a remedy needs one; the policy is admin's.
func TestDisputeRoutes(t *testing.T) {
	h := newHarness(t)
	r := h.do("POST", "/v1/commitments/cmt_1/dispute", buyerToken, `{"grounds":"timeout_breach","severity":4,"claim":"pay the penalty"}`)
	h.expect(r, 201, "")
	if got := decode[DisputeFiled](t, r); got.DisputeID != "dsp_1" {
		t.Fatalf("filed %+v", got)
	}
	if h.f.lastAct[2] != "file:timeout_breach" {
		t.Fatalf("filing reached the backend as %v", h.f.lastAct)
	}
	h.expect(h.do("POST", "/v1/commitments/cmt_1/dispute", buyerToken, `{"reason":"late","severity":"high"}`), 200, "")
	if h.f.lastAct[2] != "dispute" {
		t.Fatalf("older form reached the backend as %v", h.f.lastAct)
	}
	h.expect(h.do("POST", "/v1/commitments/cmt_1/dispute", buyerToken, `{"grounds":"x","severity":"high"}`), 400, CodeBadRequest)
	h.expect(h.do("POST", "/v1/commitments/cmt_1/dispute", buyerToken, `{"grounds":"x","bogus":1}`), 400, CodeBadRequest)

	h.expect(h.do("POST", "/v1/disputes/dsp_1/remedy", vendorToken, ``), 400, CodeBadRequest)
	h.expect(h.do("POST", "/v1/disputes/dsp_1/remedy", vendorToken, `{"remedy":""}`), 400, CodeBadRequest)
	h.expect(h.do("POST", "/v1/disputes/dsp_1/remedy", vendorToken, `{"remedy":"refund"}`), 200, "")
	if h.f.lastAct[2] != "remedy" || h.f.lastAct[0] != vendor {
		t.Fatalf("step reached the backend as %v", h.f.lastAct)
	}
	h.expect(h.do("POST", "/v1/disputes/dsp_1/accept", adminToken, ``), 403, CodeUnauthorized)
	h.expect(h.do("GET", "/v1/disputes/dsp_1", eveToken, ""), 404, CodeNotFound)
	if l := decode[DisputeList](t, h.do("GET", "/v1/disputes", eveToken, "")); l.Disputes == nil || len(l.Disputes) != 0 {
		t.Fatalf("eve sees %+v", l)
	}

	h.expect(h.do("PUT", "/v1/policy/disputes", buyerToken, `{"onBreach":"file"}`), 403, CodeUnauthorized)
	h.expect(h.do("PUT", "/v1/policy/disputes", adminToken, `{"onBreach":"explode"}`), 400, CodeBadRequest)
	h.expect(h.do("PUT", "/v1/policy/disputes", adminToken, `{"onBreach":"file","ruleWithin":"2s"}`), 200, "")
	var p DisputePolicy
	if err := json.Unmarshal(h.do("GET", "/v1/policy/disputes", adminToken, "").body, &p); err != nil || p.RuleWithin != "2s" {
		t.Fatalf("policy %+v, %v", p, err)
	}
}

func (f *fake) CancelCommitment(ctx context.Context, agent, id string) (CommitmentInfo, error) {
	f.mu.Lock()
	f.lastAct = []string{agent, id, "cancel"}
	f.mu.Unlock()
	if id != "cmt_1" || (agent != buyer && agent != vendor) {
		return CommitmentInfo{}, NotFound("no commitment %s", id)
	}
	return CommitmentInfo{CommitmentID: id, State: "ACTIVE"}, nil
}

func (f *fake) RuleDispute(ctx context.Context, p Principal, id string, req RuleRequest) (DisputeInfo, error) {
	if id != "dsp_1" {
		return DisputeInfo{}, NotFound("no dispute %s", id)
	}
	return DisputeInfo{DisputeID: id, CommitmentID: "cmt_1", State: "HUMAN"}, nil
}
