package node

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"sort"
	"strings"

	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/protocol"
)

// The API on disputes (api.DisputeBackend), and what GET
// /v1/commitments/{id} shows of obligations and disputes.

// FileDispute implements api.DisputeBackend.
func (n *Node) FileDispute(ctx context.Context, agent, id string, req api.FileDisputeRequest) (api.DisputeFiled, error) {
	c := n.getCommitment(id)
	if c == nil || c.local.id.String() != agent {
		return api.DisputeFiled{}, notFound("commitment", id)
	}
	d := &protocol.Dispute{Obligation: req.Obligation, Grounds: protocol.Grounds(req.Grounds), Severity: req.Severity,
		Claim: req.Claim, Statement: req.Statement, Time: n.now()}
	if d.Obligation == protocol.ObligationKeyDelivery {
		d.Obligation = ""
	}
	for i, raw := range req.Evidence {
		e, err := decodeEvidence(raw)
		if err != nil {
			return api.DisputeFiled{}, badRequest("evidence[%d]: %v", i, err)
		}
		d.Evidence = append(d.Evidence, e)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	did, err := n.fileLocked(ctx, c, d)
	return api.DisputeFiled{DisputeID: did}, err
}

// fileLegacyLocked files the older dispute body {reason, severity:
// low|medium|high, evidence}: grounds other, the reason as the claim, the
// evidence (any JSON) as a document.
// REQUIRES: c.mu.
func (n *Node) fileLegacyLocked(ctx context.Context, c *commitment, reason, severity string, evidence json.RawMessage) error {
	sev := 3
	switch severity {
	case "low", "minor":
		sev = 1
	case "high", "major", "critical":
		sev = 5
	}
	if reason == "" {
		reason = "unspecified"
	}
	d := &protocol.Dispute{Grounds: protocol.GroundsOther, Severity: sev, Claim: reason, Time: n.now()}
	if len(evidence) > 0 {
		h := sha256.Sum256(evidence)
		d.Evidence = []protocol.EvidenceItem{{Kind: protocol.EvidenceDocument, Hash: h[:], Content: evidence,
			MediaType: "application/json", Description: "evidence given with the dispute"}}
	}
	_, err := n.fileLocked(ctx, c, d)
	return err
}

// decodeEvidence reads one evidence item in protocol's JSON form.
func decodeEvidence(raw json.RawMessage) (protocol.EvidenceItem, error) {
	var w struct {
		Kind        string   `json:"kind"`
		Entry       string   `json:"entry"`
		Index       uint64   `json:"index"`
		Proof       []string `json:"proof"`
		Checkpoint  string   `json:"checkpoint"`
		Hash        string   `json:"hash"`
		Content     string   `json:"content"`
		MediaType   string   `json:"mediaType"`
		Description string   `json:"description"`
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return protocol.EvidenceItem{}, err
	}
	b := func(s string) ([]byte, error) {
		if s == "" {
			return nil, nil
		}
		return base64.RawURLEncoding.Strict().DecodeString(s)
	}
	e := protocol.EvidenceItem{Kind: w.Kind, Index: w.Index, Checkpoint: w.Checkpoint, MediaType: w.MediaType, Description: w.Description}
	var err error
	if e.Entry, err = b(w.Entry); err != nil {
		return e, err
	}
	if e.Hash, err = b(w.Hash); err != nil {
		return e, err
	}
	if e.Content, err = b(w.Content); err != nil {
		return e, err
	}
	for _, p := range w.Proof {
		x, err := b(p)
		if err != nil {
			return e, err
		}
		e.Proof = append(e.Proof, x)
	}
	return e, nil
}

// DisputeStep implements api.DisputeBackend.
func (n *Node) DisputeStep(ctx context.Context, agent, id, kind string, req api.DisputeStepRequest) (api.DisputeInfo, error) {
	dc := n.disputes.get(id)
	if dc == nil || dc.c.local.id.String() != agent {
		return api.DisputeInfo{}, notFound("dispute", id)
	}
	var k protocol.StepKind
	switch kind {
	case "remedy":
		k = protocol.StepCounter
	case "accept":
		k = protocol.StepAccept
	case "reject":
		k = protocol.StepReject
	case "escalate":
		k = protocol.StepEscalate
	default:
		return api.DisputeInfo{}, badRequest("unknown dispute step %q (want remedy, accept, reject or escalate)", kind)
	}
	c := dc.c
	c.mu.Lock()
	defer c.mu.Unlock()
	err := n.stepLocked(ctx, dc, k, req.Remedy, req.Reason)
	return n.disputeInfoLocked(dc), err
}

// Disputes implements api.DisputeBackend.
func (n *Node) Disputes(ctx context.Context, p api.Principal) ([]api.DisputeInfo, error) {
	var out []api.DisputeInfo
	for _, dc := range n.disputes.list() {
		if !p.Admin && dc.c.local.id.String() != p.Agent {
			continue
		}
		dc.c.mu.Lock()
		out = append(out, n.disputeInfoLocked(dc))
		dc.c.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].FiledAt.Before(out[j].FiledAt) })
	return out, nil
}

// Dispute implements api.DisputeBackend.
func (n *Node) Dispute(ctx context.Context, p api.Principal, id string) (api.DisputeInfo, error) {
	dc := n.disputes.get(id)
	if dc == nil || (!p.Admin && dc.c.local.id.String() != p.Agent) {
		return api.DisputeInfo{}, notFound("dispute", id)
	}
	dc.c.mu.Lock()
	defer dc.c.mu.Unlock()
	return n.disputeInfoLocked(dc), nil
}

// REQUIRES: dc.c.mu.
func (n *Node) disputeInfoLocked(dc *dcase) api.DisputeInfo {
	k := dc.k
	d := k.Dispute
	info := api.DisputeInfo{
		DisputeID: dc.id, CommitmentID: k.CommitmentID, State: string(k.State), Step: k.Reason,
		Obligation: d.Obligation, Grounds: string(d.Grounds), Severity: d.Severity, FiledBy: k.Filer, Against: k.Respondent,
		Arbiter: k.Arbiter, Claim: d.Claim, Evidence: []json.RawMessage{}, Offers: []json.RawMessage{},
		Table: k.TableRemedy, TableBy: k.TableBy, Resolution: k.Resolution,
		Deadline: k.Deadline(n.disputes.policy.get().windows), FiledAt: k.Filed, Updated: k.Updated,
	}
	if b, err := json.Marshal(d); err == nil {
		var f struct {
			Evidence []json.RawMessage `json:"evidence"`
		}
		if json.Unmarshal(b, &f) == nil && f.Evidence != nil {
			info.Evidence = f.Evidence
		}
	}
	for _, s := range k.Steps {
		if b, err := json.Marshal(s); err == nil {
			info.Offers = append(info.Offers, b)
		}
	}
	if k.Ruling != nil {
		info.Ruling, _ = json.Marshal(k.Ruling)
	}
	return info
}

// obligationsLocked adds c's obligations, as watched now, and its
// disputes to info.
// REQUIRES: c.mu.
func (n *Node) obligationsLocked(c *commitment, info *api.CommitmentInfo) {
	for _, s := range c.pc.Watch(n.now(), n.disputes.policy.get().windows) {
		info.Obligations = append(info.Obligations, api.ObligationInfo{
			Key: s.Key, Kind: string(s.Kind), Obligor: s.Obligor, Obligee: s.Obligee, Deadline: s.Deadline,
			Status: string(s.Status), Lateness: s.Lateness.Seconds(), PenaltyOwed: s.Penalty, Currency: s.Currency,
			AutoConfirmAt: s.AutoAt,
		})
	}
	for _, dc := range n.disputes.of(c.id) {
		info.Disputes = append(info.Disputes, dc.id)
	}
}
