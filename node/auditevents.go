package node

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/protocol"
)

// RecordAuditEvent implements api.AuditEventRecorder: an event of the
// organisation's own business, signed with the agent's key and appended to
// the ledger through the driver (ledger.BusinessEvent says who could forge
// one). A commitment it names must be one of the agent's. The agent gets
// an "audit" event once it is durable.
func (n *Node) RecordAuditEvent(ctx context.Context, agent string, req api.AuditEventRequest) (api.AuditEventResult, error) {
	a := n.agents.get(agent)
	if a == nil {
		return api.AuditEventResult{}, notFound("agent", agent)
	}
	var data bytes.Buffer
	if len(req.Data) > 0 {
		if err := json.Compact(&data, req.Data); err != nil {
			return api.AuditEventResult{}, badRequest("data: %v", err)
		}
	}
	if err := ledger.CheckBusinessEvent(req.Type, data.Bytes()); err != nil {
		return api.AuditEventResult{}, badRequest("%v", err)
	}
	if req.CommitmentID != "" {
		if c := n.getCommitment(req.CommitmentID); c == nil || c.local.id.String() != agent {
			return api.AuditEventResult{}, notFound("commitment", req.CommitmentID)
		}
	}
	cert, err := a.cert.MarshalCBOR()
	if err != nil {
		return api.AuditEventResult{}, err
	}
	now := n.now()
	ev := ledger.SignBusinessEvent(ledger.BusinessEvent{
		Type: req.Type, AgentID: agent, CommitmentID: req.CommitmentID, Data: data.Bytes(),
		Time: protocol.FormatTime(now), Certificate: cert,
	}, a.key)
	ents, err := n.record(ctx, "business event", ledger.BusinessEventRecord(now, ev))
	if err != nil {
		return api.AuditEventResult{}, err
	}
	h := ents[0].Hash()
	res := api.AuditEventResult{Index: ents[0].Index, Hash: hex.EncodeToString(h[:])}
	n.bus.publish(api.Event{Type: "audit", Data: map[string]any{
		"type": req.Type, "commitmentId": req.CommitmentID, "index": res.Index, "hash": res.Hash,
	}}, agent)
	return res, nil
}
