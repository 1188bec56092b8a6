package api

import (
	"context"
	"encoding/json"
)

// AuditEventRequest is the body of POST /v1/audit/events: an event of the
// organisation's own business, recorded on the node's ledger signed by the
// calling agent.
type AuditEventRequest struct {
	// Type names the event: 1 to 64 characters of a-z, 0-9, '.', '_' and
	// '-', starting with a letter ("order.created").
	Type string `json:"type"`
	// CommitmentID, if set, names a commitment the agent is a party to
	// that the event is about.
	CommitmentID string `json:"commitmentId,omitempty"`
	// Data is a JSON object of at most 16 KiB (decimals as strings).
	Data json.RawMessage `json:"data"`
}

// AuditEventResult is the answer of POST /v1/audit/events (201): where the
// event is on the ledger.
type AuditEventResult struct {
	Index uint64 `json:"index"`
	// Hash is the entry's hash, hex (as GET /v1/audit/entries shows it).
	Hash string `json:"hash"`
}

// AuditEventRecorder is an optional Backend extension serving
// POST /v1/audit/events.
type AuditEventRecorder interface {
	// RecordAuditEvent signs the event with the agent's key and appends it
	// to the ledger.
	RecordAuditEvent(ctx context.Context, agent string, req AuditEventRequest) (AuditEventResult, error)
}

func auditEventRoute() *route {
	return &route{
		Method: "POST", Path: "/v1/audit/events", Access: accessAgent, Status: 201,
		Summary:  "Record an event of the organisation's own business on the ledger, signed by the calling agent.",
		Request:  typeOf[AuditEventRequest](),
		Response: typeOf[AuditEventResult](),
		Errors:   []int{400, 403, 404, 501},
		Description: "The event ({type, commitmentId?, data}) is signed with the agent's key and appended to the node's " +
			"ledger as a business-event entry, which GET /v1/audit/entries shows and an auditor verifies offline like " +
			"every other record (the agent's certificate and signature are in it). An event of type audit follows on the " +
			"agent's event stream.",
		json: func(c *call) (any, error) {
			rec, err := extension[AuditEventRecorder](c, "business events are not recorded by this node")
			if err != nil {
				return nil, err
			}
			var req AuditEventRequest
			if _, err := c.decodeBody(&req, false); err != nil {
				return nil, err
			}
			return rec.RecordAuditEvent(c.ctx(), c.p.Agent, req)
		},
	}
}
