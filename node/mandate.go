package node

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/protocol"
)

// Mandates: what an agent may commit its organisation to, set by the
// organisation (admin API), recorded in the ledger at each change
// (ledger.KindMandate) and checked before the agent signs anything. A move
// beyond the mandate is refused before it is signed, naming the limit:
// budget_exceeded for a price, a total or a budget, policy_violation for a
// resource, a deadline, a counterparty or its trust.
//
// Limits on money (maxUnitPrice, maxTotal, budgetPerDay, budgetPerMonth)
// apply where the agent would pay: the buyer of the commitment the move
// could form (protocol.Commitment.Buyer's rule: the terms' provider if
// named, else the acceptor, delivers; the other party pays). The others
// apply to every offer the agent makes or accepts; counterparties and
// minTrust also to the sessions it opens.
//
// An adversary inside the organisation who holds the agent's token can
// make only the moves the mandate allows; one who holds the admin token
// can change the mandate, and every change is in the ledger with its
// time. Budgets count the commitments formed in the current UTC day and
// month (all but CANCELLED ones); two moves racing in two sessions are
// each checked against what was formed before them.

// mandateOf is the agent's mandate (nil: none).
func (a *localAgent) mandateOf() *api.Mandate { return a.mandate.Load() }

// checkMandate refuses an offer or acceptance env (prepared, not signed)
// that goes beyond the mandate of s's agent.
// REQUIRES: s.lock.
func (n *Node) checkMandate(s *session, env *protocol.Envelope) error {
	m := s.local.mandateOf()
	if m == nil {
		return nil
	}
	var terms *protocol.Terms
	var provider string // who delivers, should the move form a commitment
	me, them := s.local.id.String(), s.remote.String()
	switch b := env.Body.(type) {
	case *protocol.ProposeBody:
		terms = b.Terms
		provider = them
	case *protocol.CounterBody:
		terms = &b.Terms
		provider = them
	case *protocol.CommitBody:
		terms = &b.Terms
		provider = them
	case *protocol.AcceptBody:
		offer, ok := s.ps.Envelope(b.ReferenceID)
		if !ok {
			return nil // the state machine refuses it
		}
		terms = offerTerms(offer)
		provider = me
	}
	if terms == nil {
		return nil
	}
	if terms.Provider != "" {
		provider = terms.Provider
	}
	if err := n.checkParty(m, s.remote); err != nil {
		return err
	}
	if len(m.Resources) > 0 && !slices.Contains(m.Resources, terms.Resource) {
		return errorf(protocol.CodePolicyViolation, "the mandate allows the resources %s, not %q", strings.Join(m.Resources, ", "), terms.Resource)
	}
	if m.LatestDeadline != "" {
		latest, _ := time.Parse(time.RFC3339Nano, m.LatestDeadline)
		if !terms.DeliverBy.IsZero() && terms.DeliverBy.After(latest) {
			return errorf(protocol.CodePolicyViolation, "deliverBy %s is later than the mandate's latest deadline %s",
				protocol.FormatTime(terms.DeliverBy), m.LatestDeadline)
		}
	}
	if provider == me {
		return nil // the agent is paid: the money limits are for spending
	}
	cur := terms.Currency
	if max, ok := m.MaxUnitPrice[cur]; ok {
		if c, err := protocol.CompareDecimal(terms.UnitPrice, max); err != nil || c > 0 {
			return errorf(protocol.CodeBudgetExceeded, "unit price %s %s is above the mandate's maximum of %s %s", terms.UnitPrice, cur, max, cur)
		}
	}
	total, err := terms.Total()
	if err != nil {
		return err
	}
	if max, ok := m.MaxTotal[cur]; ok {
		if c, err := protocol.CompareDecimal(total, max); err != nil || c > 0 {
			return errorf(protocol.CodeBudgetExceeded, "total %s %s is above the mandate's maximum of %s %s per commitment", total, cur, max, cur)
		}
	}
	for _, b := range []struct {
		name   string
		limits map[string]string
		since  time.Time
	}{
		{"day", m.BudgetPerDay, startOfDay(n.now())},
		{"month", m.BudgetPerMonth, startOfMonth(n.now())},
	} {
		limit, ok := b.limits[cur]
		if !ok {
			continue
		}
		spent, err := n.spent(s.local, cur, b.since)
		if err != nil {
			return err
		}
		after, err := protocol.AddDecimal(spent, total)
		if err != nil {
			return err
		}
		if c, err := protocol.CompareDecimal(after, limit); err != nil || c > 0 {
			return errorf(protocol.CodeBudgetExceeded, "%s %s would bring this %s's commitments to %s %s, above the mandate's budget of %s %s",
				total, cur, b.name, after, cur, limit, cur)
		}
	}
	return nil
}

// checkParty refuses a counterparty the mandate does not allow.
func (n *Node) checkParty(m *api.Mandate, remote protocol.AgentID) error {
	if len(m.Counterparties) > 0 && !slices.Contains(m.Counterparties, remote.Org) && !slices.Contains(m.Counterparties, remote.String()) {
		return errorf(protocol.CodePolicyViolation, "the mandate does not allow %s as a counterparty", remote)
	}
	if m.MinTrust > 0 {
		if score := n.trustScore(remote.String()); score < m.MinTrust {
			return errorf(protocol.CodePolicyViolation, "%s has a trust score of %.1f, below the mandate's minimum of %g", remote, score, m.MinTrust)
		}
	}
	return nil
}

// offerTerms are the complete terms of an offer envelope, or nil.
func offerTerms(env *protocol.Envelope) *protocol.Terms {
	switch b := env.Body.(type) {
	case *protocol.ProposeBody:
		return b.Terms
	case *protocol.CounterBody:
		return &b.Terms
	case *protocol.CommitBody:
		return &b.Terms
	}
	return nil
}

// spent is the total, in cur, of the commitments formed since since in
// which the agent pays (all but CANCELLED ones).
func (n *Node) spent(a *localAgent, cur string, since time.Time) (string, error) {
	total := "0"
	for _, c := range n.commitments.list(func(c *commitment) bool { return c.local == a }) {
		c.mu.Lock()
		pc, state := c.pc, c.stateLocked()
		c.mu.Unlock()
		if pc.Created.Before(since) || state == protocol.CommitmentCancelled || pc.Terms.Currency != cur || pc.Buyer() != a.id.String() {
			continue
		}
		t, err := pc.Terms.Total()
		if err != nil {
			return "", err
		}
		if total, err = protocol.AddDecimal(total, t); err != nil {
			return "", err
		}
	}
	return total, nil
}

func startOfDay(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

func startOfMonth(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// validateMandate checks a mandate as the API receives it and returns it
// in normal form (lists sorted, deadline in the protocol's time form).
func validateMandate(m api.Mandate) (api.Mandate, error) {
	for name, limits := range map[string]map[string]string{"maxUnitPrice": m.MaxUnitPrice, "maxTotal": m.MaxTotal,
		"budgetPerDay": m.BudgetPerDay, "budgetPerMonth": m.BudgetPerMonth} {
		for cur, v := range limits {
			if cur == "" || len(cur) > 16 {
				return m, badRequest("%s: a currency code, not %q", name, cur)
			}
			if err := protocol.ValidDecimal(v); err != nil {
				return m, badRequest("%s.%s: %q is not a decimal (write amounts as strings, e.g. \"2500.00\")", name, cur, v)
			}
		}
	}
	if len(m.ApprovalAbove) > 0 {
		return m, errorf(api.CodeUnsupported, "approvalAbove: moves waiting for a human's approval are not supported by this node yet")
	}
	if m.LatestDeadline != "" {
		t, err := time.Parse(time.RFC3339Nano, m.LatestDeadline)
		if err != nil {
			return m, badRequest("latestDeadline: %q is not an RFC 3339 time", m.LatestDeadline)
		}
		m.LatestDeadline = protocol.FormatTime(t)
	}
	if m.MinTrust < 0 || m.MinTrust > 100 || m.MinTrust != m.MinTrust {
		return m, badRequest("minTrust: %v is not a score between 0 and 100", m.MinTrust)
	}
	for _, c := range m.Counterparties {
		if _, err := protocol.ParseAgentID(c); err != nil {
			if _, err := protocol.PublicKeyFromPeerID(c); err != nil {
				return m, badRequest("counterparties: %q is neither an organisation's peer id nor an agent id", c)
			}
		}
	}
	for _, r := range m.Resources {
		if r == "" {
			return m, badRequest("resources: an empty resource")
		}
	}
	sort.Strings(m.Resources)
	sort.Strings(m.Counterparties)
	return m, nil
}

// Mandate implements api.MandateKeeper.
func (n *Node) Mandate(ctx context.Context, agentID string) (api.Mandate, error) {
	a := n.localAgent(agentID)
	if a == nil {
		return api.Mandate{}, notFound("agent", agentID)
	}
	if m := a.mandateOf(); m != nil {
		return *m, nil
	}
	return api.Mandate{}, nil
}

// SetMandate implements api.MandateKeeper: the mandate is recorded in the
// ledger, then stored with the agent, then enforced.
func (n *Node) SetMandate(ctx context.Context, agentID string, m api.Mandate) (api.Mandate, error) {
	m, err := validateMandate(m)
	if err != nil {
		return api.Mandate{}, err
	}
	n.agents.change.Lock()
	defer n.agents.change.Unlock()
	a := n.agents.get(agentID)
	if a == nil {
		return api.Mandate{}, notFound("agent", agentID)
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return api.Mandate{}, err
	}
	if string(raw) == "{}" {
		raw = nil // no limits
	}
	if _, err := n.record(ctx, "mandate", ledger.MandateRecord(n.now(), ledger.Mandate{Agent: agentID, Mandate: raw})); err != nil {
		return api.Mandate{}, fmt.Errorf("record mandate: %w", err)
	}
	if err := n.agents.secrets.setMandate(a.rec, raw); err != nil {
		return api.Mandate{}, fmt.Errorf("store mandate: %w", err)
	}
	if raw == nil {
		a.mandate.Store(nil)
	} else {
		a.mandate.Store(&m)
	}
	n.log.Info("mandate set", "agent", agentID, "mandate", string(raw))
	return m, nil
}

var _ api.MandateKeeper = (*Node)(nil)
