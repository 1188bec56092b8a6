package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/aspnode/asp/node/api"
)

// Disputes (docs/disputes.md): filing, the parties' steps, the cases, and
// the node's escalation policy.

// FileDispute files a dispute on a commitment: grounds, severity 1–5, the
// claim (the remedy asked) and evidence. It returns the dispute's id.
func (c *Client) FileDispute(ctx context.Context, commitmentID string, req api.FileDisputeRequest) (string, error) {
	var v api.DisputeFiled
	err := c.Do(ctx, http.MethodPost, "/v1/commitments/"+url.PathEscape(commitmentID)+"/dispute", req, &v)
	return v.DisputeID, err
}

// Disputes lists the disputes on the caller's commitments (admin: all).
func (c *Client) Disputes(ctx context.Context) ([]api.DisputeInfo, error) {
	var v api.DisputeList
	return v.Disputes, c.Do(ctx, http.MethodGet, "/v1/disputes", nil, &v)
}

// DisputeCase returns one dispute.
func (c *Client) DisputeCase(ctx context.Context, id string) (api.DisputeInfo, error) {
	var v api.DisputeInfo
	return v, c.Do(ctx, http.MethodGet, "/v1/disputes/"+url.PathEscape(id), nil, &v)
}

// OfferRemedy offers a remedy (a counter) in a dispute.
func (c *Client) OfferRemedy(ctx context.Context, id, remedy, reason string) (api.DisputeInfo, error) {
	return c.disputeStep(ctx, id, "remedy", api.DisputeStepRequest{Remedy: remedy, Reason: reason})
}

// AcceptRemedy accepts the remedy on the table: the dispute is RESOLVED.
func (c *Client) AcceptRemedy(ctx context.Context, id string) (api.DisputeInfo, error) {
	return c.disputeStep(ctx, id, "accept", api.DisputeStepRequest{})
}

// RejectRemedy rejects the remedy on the table: the dispute escalates.
func (c *Client) RejectRemedy(ctx context.Context, id, reason string) (api.DisputeInfo, error) {
	return c.disputeStep(ctx, id, "reject", api.DisputeStepRequest{Reason: reason})
}

// Escalate moves the dispute to its next rung now.
func (c *Client) Escalate(ctx context.Context, id, reason string) (api.DisputeInfo, error) {
	return c.disputeStep(ctx, id, "escalate", api.DisputeStepRequest{Reason: reason})
}

func (c *Client) disputeStep(ctx context.Context, id, kind string, req api.DisputeStepRequest) (api.DisputeInfo, error) {
	var v api.DisputeInfo
	return v, c.Do(ctx, http.MethodPost, "/v1/disputes/"+url.PathEscape(id)+"/"+kind, req, &v)
}

// DisputePolicy returns the node's dispute policy (admin).
func (c *Client) DisputePolicy(ctx context.Context) (api.DisputePolicy, error) {
	var v api.DisputePolicy
	return v, c.Do(ctx, http.MethodGet, "/v1/policy/disputes", nil, &v)
}

// SetDisputePolicy sets the node's dispute policy (admin); empty fields
// take their defaults. It returns the policy in force.
func (c *Client) SetDisputePolicy(ctx context.Context, p api.DisputePolicy) (api.DisputePolicy, error) {
	var v api.DisputePolicy
	return v, c.Do(ctx, http.MethodPut, "/v1/policy/disputes", p, &v)
}

// Cancel asks for the commitment's cancellation: it is CANCELLED once both
// parties asked.
func (c *Client) Cancel(ctx context.Context, commitmentID string) (api.CommitmentInfo, error) {
	var v api.CommitmentInfo
	return v, c.Do(ctx, http.MethodPost, "/v1/commitments/"+url.PathEscape(commitmentID)+"/cancel", nil, &v)
}

// Rule rules on a dispute: at the human rung, as the admin, with the same
// ruling as the other party's admin (RULED once both ruled).
func (c *Client) Rule(ctx context.Context, id string, req api.RuleRequest) (api.DisputeInfo, error) {
	var v api.DisputeInfo
	return v, c.Do(ctx, http.MethodPost, "/v1/disputes/"+url.PathEscape(id)+"/rule", req, &v)
}
