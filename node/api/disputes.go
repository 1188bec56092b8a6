package api

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// Disputes (docs/disputes.md): the policy, filing, the parties' steps, and
// the cases a principal may see. A backend that serves them implements
// DisputeBackend; others answer 501.

// DisputeBackend is what the dispute routes serve. *node.Node implements it.
type DisputeBackend interface {
	// DisputePolicy returns the policy in force, every field spelled out.
	DisputePolicy(ctx context.Context) (DisputePolicy, error)
	// SetDisputePolicy validates, records and puts a policy in force;
	// empty fields take their defaults.
	SetDisputePolicy(ctx context.Context, p DisputePolicy) (DisputePolicy, error)
	// FileDispute files a dispute by the agent on a commitment it is a party to.
	FileDispute(ctx context.Context, agent, commitmentID string, req FileDisputeRequest) (DisputeFiled, error)
	// Disputes lists the disputes the principal may see (an agent: those
	// on its commitments; admin: all of the node's).
	Disputes(ctx context.Context, p Principal) ([]DisputeInfo, error)
	// Dispute returns one dispute the principal may see.
	Dispute(ctx context.Context, p Principal, disputeID string) (DisputeInfo, error)
	// DisputeStep takes a party's step: "remedy" (a counter), "accept",
	// "reject" or "escalate".
	DisputeStep(ctx context.Context, agent, disputeID, kind string, req DisputeStepRequest) (DisputeInfo, error)
	// CancelCommitment asks for the commitment's cancellation by the
	// agent: CANCELLED once both parties asked.
	CancelCommitment(ctx context.Context, agent, commitmentID string) (CommitmentInfo, error)
	// RuleDispute rules on a dispute: the admin at the human rung (both
	// parties' admins, the same ruling), or the arbiter.
	RuleDispute(ctx context.Context, p Principal, disputeID string, req RuleRequest) (DisputeInfo, error)
}

// RuleRequest is the body of POST /v1/disputes/{id}/rule.
type RuleRequest struct {
	// Outcome: upheld, dismissed or split.
	Outcome string `json:"outcome"`
	// Breacher is the party in breach: the respondent if upheld, optional
	// if split, none if dismissed.
	Breacher  string `json:"breacher,omitempty"`
	Remedy    string `json:"remedy,omitempty"`
	Reasoning string `json:"reasoning"`
}

// DisputePolicy is the escalation policy: GET and PUT /v1/policy/disputes,
// and disputes: in config.yaml. Durations are Go durations ("72h", "2s").
type DisputePolicy struct {
	// OnBreach is what the node does on a breach it detects of an
	// obligation owed to one of its agents: file (a dispute, at once),
	// notify (record and publish only; the default) or ask (publish for
	// the agent to decide).
	OnBreach      string `json:"onBreach,omitempty" yaml:"onBreach,omitempty"`
	RespondWithin string `json:"respondWithin,omitempty" yaml:"respondWithin,omitempty"`
	NegotiateFor  string `json:"negotiateFor,omitempty" yaml:"negotiateFor,omitempty"`
	RuleWithin    string `json:"ruleWithin,omitempty" yaml:"ruleWithin,omitempty"`
	ConfirmWithin string `json:"confirmWithin,omitempty" yaml:"confirmWithin,omitempty"`
	// DefaultArbiters are agent ids the organisation accepts as arbiters
	// when the terms name none.
	DefaultArbiters []string `json:"defaultArbiters,omitempty" yaml:"defaultArbiters,omitempty"`
	// Webhook is the URL the organisation's humans are called at.
	Webhook string `json:"webhook,omitempty" yaml:"webhook,omitempty"`
}

// FileDisputeRequest is the body of POST /v1/commitments/{id}/dispute
// (the form with grounds; the older {reason, severity, evidence} form is
// DisputeRequest).
type FileDisputeRequest struct {
	// Grounds: timeout_breach, non_delivery, specification_mismatch,
	// unauthorized_term_change, payment_default or other.
	Grounds string `json:"grounds"`
	// Severity is 1 (minor) to 5 (grave).
	Severity int `json:"severity"`
	// Claim is the remedy asked.
	Claim string `json:"claim"`
	// Obligation is the obligation disputed (delivery, payment,
	// commit.<i>); default: the delivery.
	Obligation string `json:"obligation,omitempty"`
	Statement  string `json:"statement,omitempty"`
	// Evidence items in protocol's JSON form (docs/disputes.md §5).
	Evidence []json.RawMessage `json:"evidence,omitempty"`
}

// DisputeFiled is the answer of a filing: 201 {disputeId}.
type DisputeFiled struct {
	DisputeID string `json:"disputeId"`
}

func (DisputeFiled) httpStatus() int { return http.StatusCreated }

// DisputeStepRequest is the body of POST /v1/disputes/{id}/remedy, accept,
// reject or escalate.
type DisputeStepRequest struct {
	// Remedy is the remedy offered (remedy only, required there).
	Remedy string `json:"remedy,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// DisputeInfo is one dispute as GET /v1/disputes/{id} shows it.
type DisputeInfo struct {
	DisputeID    string `json:"disputeId"`
	CommitmentID string `json:"commitmentId"`
	// State: FILED, REMEDY_OFFERED, ESCALATED, HUMAN, RESOLVED or RULED.
	State string `json:"state"`
	// Step is why the last change happened.
	Step       string            `json:"step"`
	Obligation string            `json:"obligation,omitempty"`
	Grounds    string            `json:"grounds"`
	Severity   int               `json:"severity"`
	FiledBy    string            `json:"filedBy"`
	Against    string            `json:"against"`
	Arbiter    string            `json:"arbiter,omitempty"`
	Claim      string            `json:"claim"`
	Evidence   []json.RawMessage `json:"evidence"`
	// Offers are the signed steps, in order (protocol's JSON form).
	Offers []json.RawMessage `json:"offers"`
	// Table is the remedy on the table, and who put it there.
	Table      string          `json:"table,omitempty"`
	TableBy    string          `json:"tableBy,omitempty"`
	Resolution string          `json:"resolution,omitempty"`
	Ruling     json.RawMessage `json:"ruling,omitempty"`
	// Deadline is when the case moves on its own next (zero: never).
	Deadline time.Time `json:"deadline,omitzero"`
	FiledAt  time.Time `json:"filedAt"`
	Updated  time.Time `json:"updatedAt"`
}

// DisputeList is the answer of GET /v1/disputes.
type DisputeList struct {
	Disputes []DisputeInfo `json:"disputes"`
}

// ObligationInfo is one obligation of a commitment, as watched now.
type ObligationInfo struct {
	Key      string    `json:"key"`
	Kind     string    `json:"kind"`
	Obligor  string    `json:"obligor"`
	Obligee  string    `json:"obligee"`
	Deadline time.Time `json:"deadline,omitzero"`
	// Status: pending, claimed, met, late, breached, disputed, cancelled, suspended.
	Status string `json:"status"`
	// Lateness in seconds.
	Lateness float64 `json:"lateness,omitempty"`
	// PenaltyOwed is the amount owed for the lateness, in Currency.
	PenaltyOwed string `json:"penaltyOwed,omitempty"`
	Currency    string `json:"currency,omitempty"`
	// AutoConfirmAt is when a claim is confirmed automatically.
	AutoConfirmAt time.Time `json:"autoConfirmAt,omitzero"`
}

func disputeBackend(c *call) (DisputeBackend, error) {
	return extension[DisputeBackend](c, "disputes are not served by this node")
}

func disputeRoutes() []*route {
	rs := []*route{
		{
			Method: "GET", Path: "/v1/policy/disputes", Access: accessAdmin, Status: 200,
			Summary:  "The dispute escalation policy in force.",
			Response: typeOf[DisputePolicy](),
			Errors:   []int{403, 501},
			json: func(c *call) (any, error) {
				db, err := disputeBackend(c)
				if err != nil {
					return nil, err
				}
				return db.DisputePolicy(c.ctx())
			},
		},
		{
			Method: "PUT", Path: "/v1/policy/disputes", Access: accessAdmin, Status: 200,
			Summary: "Set the dispute escalation policy; recorded in the ledger.",
			Request: typeOf[DisputePolicy](), Response: typeOf[DisputePolicy](),
			Errors: []int{400, 403, 501},
			json: func(c *call) (any, error) {
				var p DisputePolicy
				if _, err := c.decodeBody(&p, false); err != nil {
					return nil, err
				}
				db, err := disputeBackend(c)
				if err != nil {
					return nil, err
				}
				return db.SetDisputePolicy(c.ctx(), p)
			},
		},
		{
			Method: "GET", Path: "/v1/disputes", Access: accessParty, Status: 200,
			Summary:  "List the disputes on the caller's commitments (admin: all).",
			Response: typeOf[DisputeList](),
			Errors:   []int{501},
			json: func(c *call) (any, error) {
				db, err := disputeBackend(c)
				if err != nil {
					return nil, err
				}
				ds, err := db.Disputes(c.ctx(), c.p)
				if ds == nil {
					ds = []DisputeInfo{}
				}
				return DisputeList{Disputes: ds}, err
			},
		},
		{
			Method: "GET", Path: "/v1/disputes/{disputeId}", Access: accessParty, Status: 200,
			Summary:  "One dispute: its filing, steps, remedy on the table and next deadline.",
			Response: typeOf[DisputeInfo](),
			Errors:   []int{404, 501},
			json: func(c *call) (any, error) {
				db, err := disputeBackend(c)
				if err != nil {
					return nil, err
				}
				return db.Dispute(c.ctx(), c.p, c.params["disputeId"])
			},
		},
	}
	rs = append(rs, &route{
		Method: "POST", Path: "/v1/commitments/{commitmentId}/cancel", Access: accessAgent, Status: 200,
		Summary:  "Ask for the commitment's cancellation: CANCELLED once both parties asked (both signatures).",
		Response: typeOf[CommitmentInfo](),
		Errors:   []int{403, 404, 409, 501},
		json: func(c *call) (any, error) {
			if _, err := c.readBody(); err != nil {
				return nil, err
			}
			db, err := disputeBackend(c)
			if err != nil {
				return nil, err
			}
			return db.CancelCommitment(c.ctx(), c.p.Agent, c.params["commitmentId"])
		},
	})
	rs = append(rs, &route{
		Method: "POST", Path: "/v1/disputes/{disputeId}/rule", Access: accessAny, Status: 200,
		Summary: "Rule on a dispute: at the human rung both parties' admins, the same ruling (it is RULED once both ruled).",
		Request: typeOf[RuleRequest](), Response: typeOf[DisputeInfo](),
		Errors: []int{400, 403, 404, 409, 501},
		json: func(c *call) (any, error) {
			var req RuleRequest
			if _, err := c.decodeBody(&req, false); err != nil {
				return nil, err
			}
			db, err := disputeBackend(c)
			if err != nil {
				return nil, err
			}
			return db.RuleDispute(c.ctx(), c.p, c.params["disputeId"], req)
		},
	})
	for _, k := range []struct{ kind, summary string }{
		{"remedy", "Offer a remedy (a counter) in a dispute."},
		{"accept", "Accept the remedy on the table: the dispute is RESOLVED."},
		{"reject", "Reject the remedy on the table: the dispute escalates."},
		{"escalate", "Escalate the dispute to its next rung now."},
	} {
		kind := k.kind
		rs = append(rs, &route{
			Method: "POST", Path: "/v1/disputes/{disputeId}/" + kind, Access: accessAgent, Status: 200,
			Summary: k.summary, Request: typeOf[DisputeStepRequest](), OptionalBody: kind != "remedy",
			Response: typeOf[DisputeInfo](),
			Errors:   []int{400, 403, 404, 409, 501},
			json: func(c *call) (any, error) {
				var req DisputeStepRequest
				if _, err := c.decodeBody(&req, kind != "remedy"); err != nil {
					return nil, err
				}
				if kind == "remedy" && req.Remedy == "" {
					return nil, BadRequest("remedy is required")
				}
				db, err := disputeBackend(c)
				if err != nil {
					return nil, err
				}
				return db.DisputeStep(c.ctx(), c.p.Agent, c.params["disputeId"], kind, req)
			},
		})
	}
	return rs
}

// fileDispute serves the filing form of POST /v1/commitments/{id}/dispute
// (a body with grounds).
func fileDispute(c *call, raw []byte) (any, error) {
	var req FileDisputeRequest
	if err := decodeStrict(raw, &req); err != nil {
		return nil, err
	}
	db, err := disputeBackend(c)
	if err != nil {
		return nil, err
	}
	return db.FileDispute(c.ctx(), c.p.Agent, c.params["commitmentId"], req)
}

// isFiling reports whether a dispute body is the filing form (it names grounds).
func isFiling(raw []byte) bool {
	var probe map[string]json.RawMessage
	if json.Unmarshal(raw, &probe) != nil {
		return false
	}
	_, ok := probe["grounds"]
	return ok
}
