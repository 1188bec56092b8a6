package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/p2p"
	"github.com/aspnode/asp/protocol"
	"github.com/cockroachdb/pebble/v2"
)

// Consent at run time: the invitation policy (consent rule, allow and deny
// lists, minimum trust) can be read and replaced through the admin API,
// and an organisation revoked, without a restart. Each change is recorded
// in the ledger (ledger.KindConsent) before it takes effect and kept in
// the node's private store, where it wins over config.yaml at the next
// start; SIGHUP (asp node) reads config.yaml again and makes it the policy
// in force. Revoking an organisation (adding it to the deny list) ends its
// live sessions — with a signed CLOSE where the session allows one and the
// counterparty answers, on this side alone otherwise — then refuses its
// connections, requests and invitations.

// keyConsent holds, in the private store, the policy last set at run time.
var keyConsent = []byte("c/consent")

// consentPolicy returns the policy in force (config.yaml's until Start
// has loaded it).
func (n *Node) consentPolicy() *api.Consent {
	if c := n.consent.Load(); c != nil {
		return c
	}
	return &api.Consent{Consent: n.cfg.Consent, Allow: n.cfg.Allow, Deny: n.cfg.Deny, MinTrust: n.cfg.MinTrust}
}

// denied reports whether the policy refuses the organisation org.
func (n *Node) denied(org string) bool { return slices.Contains(n.consentPolicy().Deny, org) }

// loadConsent puts the policy last set at run time in force, if there is
// one, else config.yaml's.
func (n *Node) loadConsent() error {
	v, closer, err := n.agents.secrets.db.Get(keyConsent)
	if errors.Is(err, pebble.ErrNotFound) {
		n.consent.Store(&api.Consent{Consent: n.cfg.Consent, Allow: n.cfg.Allow, Deny: n.cfg.Deny, MinTrust: n.cfg.MinTrust})
		return nil
	}
	if err != nil {
		return err
	}
	defer closer.Close()
	var c api.Consent
	if err := json.Unmarshal(v, &c); err != nil {
		return fmt.Errorf("consent set at run time: %w", err)
	}
	n.consent.Store(&c)
	n.log.Info("consent policy as last set at run time (it wins over config.yaml until SIGHUP)", "consent", c.Consent, "deny", len(c.Deny))
	return nil
}

// validConsent checks a policy and returns it in normal form.
func validConsent(c api.Consent) (api.Consent, error) {
	switch c.Consent {
	case ConsentAcceptAll, ConsentAllowList, ConsentAsk:
	case "":
		c.Consent = ConsentAcceptAll
	default:
		return c, badRequest("consent: %q is not one of %s, %s, %s", c.Consent, ConsentAcceptAll, ConsentAllowList, ConsentAsk)
	}
	for name, list := range map[string][]string{"allow": c.Allow, "deny": c.Deny} {
		if _, err := p2p.ParsePeerIDs(list); err != nil {
			return c, badRequest("%s: %v", name, err)
		}
	}
	if math.IsNaN(c.MinTrust) || c.MinTrust < 0 || c.MinTrust > 100 {
		return c, badRequest("minTrust: %v is not a score between 0 and 100", c.MinTrust)
	}
	c.Allow, c.Deny = normalList(c.Allow), normalList(c.Deny)
	return c, nil
}

func normalList(l []string) []string {
	out := slices.Clone(l)
	sort.Strings(out)
	out = slices.Compact(out)
	if out == nil {
		out = []string{}
	}
	return out
}

// Consent implements api.ConsentKeeper.
func (n *Node) Consent(ctx context.Context) (api.Consent, error) {
	c := *n.consentPolicy()
	c.Allow, c.Deny = normalList(c.Allow), normalList(c.Deny)
	return c, nil
}

// SetConsent implements api.ConsentKeeper: the policy is recorded, kept,
// put in force; organisations newly denied are revoked.
func (n *Node) SetConsent(ctx context.Context, c api.Consent) (api.Consent, error) {
	c, err := validConsent(c)
	if err != nil {
		return api.Consent{}, err
	}
	n.consentMu.Lock()
	defer n.consentMu.Unlock()
	before := n.consentPolicy()
	raw, err := json.Marshal(c)
	if err != nil {
		return api.Consent{}, err
	}
	if _, err := n.record(ctx, "consent", ledger.ConsentRecord(n.now(), raw)); err != nil {
		return api.Consent{}, fmt.Errorf("record consent: %w", err)
	}
	if err := n.agents.secrets.db.Set(keyConsent, raw, pebble.Sync); err != nil {
		return api.Consent{}, fmt.Errorf("store consent: %w", err)
	}
	// Sessions with organisations newly denied end while they can still
	// be told; then their connections go.
	for _, org := range c.Deny {
		if !slices.Contains(before.Deny, org) {
			n.endSessionsWith(ctx, org)
		}
	}
	n.consent.Store(&c)
	if n.host != nil {
		if err := n.host.SetAccessLists(nil, c.Deny); err != nil {
			return api.Consent{}, err
		}
	}
	n.log.Info("consent policy changed", "consent", c.Consent, "allow", len(c.Allow), "deny", len(c.Deny), "minTrust", c.MinTrust)
	return c, nil
}

// RevokeOrg implements api.ConsentKeeper: org joins the deny list (and
// leaves the allow list).
func (n *Node) RevokeOrg(ctx context.Context, org string) (api.Consent, error) {
	if _, err := protocol.PublicKeyFromPeerID(org); err != nil {
		return api.Consent{}, badRequest("%q is not an organisation's peer id", org)
	}
	if org == n.peerID {
		return api.Consent{}, badRequest("a node cannot revoke its own organisation")
	}
	c := *n.consentPolicy()
	c.Allow = slices.DeleteFunc(slices.Clone(c.Allow), func(s string) bool { return s == org })
	c.Deny = append(slices.Clone(c.Deny), org)
	return n.SetConsent(ctx, c)
}

// endSessionsWith ends this node's live sessions with org: a signed CLOSE
// where the session allows one and the counterparty takes it, else an end
// recorded on this side.
func (n *Node) endSessionsWith(ctx context.Context, org string) {
	for _, s := range n.sessions.list(func(s *session) bool { return s.remote.Org == org && sessionOpen(s) }) {
		if err := s.acquire(ctx, false, false); err != nil {
			continue
		}
		n.endRevokedLocked(ctx, s)
		s.release()
	}
}

// REQUIRES: s.lock.
func (n *Node) endRevokedLocked(ctx context.Context, s *session) {
	if s.ended != "" || s.ps.State().Terminal() {
		return
	}
	const reason = "the organisation revoked the counterparty"
	if s.pending != nil && s.pending.Performative != protocol.Accept {
		if err := n.supersedeLocked(ctx, s, reason); err != nil {
			n.log.Warn("revoke: supersede", "session", s.id, "err", err)
		}
	}
	if s.pending == nil && s.ps.Len() > 0 {
		if env, err := n.prepare(s, protocol.Close, &protocol.CloseBody{Reason: reason}, n.now()); err == nil {
			if _, err := n.moveLocked(ctx, s, env); err == nil && s.ps.State().Terminal() {
				return
			}
		}
	}
	n.endLocked(ctx, s, reason, false)
}

// ReloadConsent reads config.yaml again and puts its invitation policy in
// force (asp node does on SIGHUP), recorded like any change.
func (n *Node) ReloadConsent(ctx context.Context) error {
	cfg, err := LoadConfig(n.cfg.Home)
	if err != nil {
		return err
	}
	c, err := n.SetConsent(ctx, api.Consent{Consent: cfg.Consent, Allow: cfg.Allow, Deny: cfg.Deny, MinTrust: cfg.MinTrust})
	if err != nil {
		return err
	}
	n.log.Info("config.yaml reloaded: invitation policy in force", "consent", c.Consent, "deny", len(c.Deny))
	return nil
}

var _ api.ConsentKeeper = (*Node)(nil)
