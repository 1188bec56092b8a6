package node

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/aspnode/asp/ledger"
	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/protocol"
	"github.com/goccy/go-yaml"
)

// The dispute policy: disputes: in config.yaml, GET and PUT
// /v1/policy/disputes. The policy in force is recorded in the ledger
// (ledger.KindPolicy) when the node starts with one that differs from the
// last recorded, and when the admin API changes it, so every dispute step
// can be replayed with the windows in force at its time. A ledger with no
// policy record was kept under the defaults.

// DisputePolicy is the policy as the configuration spells it.
type DisputePolicy = api.DisputePolicy

// What the node does on a breach it detects.
const (
	OnBreachFile   = "file"   // file a dispute at once against the obligor
	OnBreachNotify = "notify" // record the breach and publish it (default)
	OnBreachAsk    = "ask"    // publish it for the agent to decide
)

// policy is a validated dispute policy.
type policy struct {
	onBreach string
	windows  protocol.DisputeWindows
	arbiters []string
	webhook  string
}

// resolvePolicy validates p and fills its defaults.
func resolvePolicy(p DisputePolicy) (policy, error) {
	out := policy{onBreach: p.OnBreach, webhook: p.Webhook}
	switch p.OnBreach {
	case "":
		out.onBreach = OnBreachNotify
	case OnBreachFile, OnBreachNotify, OnBreachAsk:
	default:
		return policy{}, fmt.Errorf("onBreach %q: want file, notify or ask", p.OnBreach)
	}
	for _, w := range []struct {
		name string
		s    string
		d    *time.Duration
	}{
		{"confirmWithin", p.ConfirmWithin, &out.windows.ConfirmWithin},
		{"respondWithin", p.RespondWithin, &out.windows.RespondWithin},
		{"negotiateFor", p.NegotiateFor, &out.windows.NegotiateFor},
		{"ruleWithin", p.RuleWithin, &out.windows.RuleWithin},
	} {
		if w.s == "" {
			continue
		}
		d, err := time.ParseDuration(w.s)
		if err != nil || d <= 0 {
			return policy{}, fmt.Errorf("%s %q: want a positive duration such as \"72h\" or \"2s\"", w.name, w.s)
		}
		*w.d = d
	}
	out.windows = out.windows.WithDefaults()
	for _, a := range p.DefaultArbiters {
		if _, err := protocol.ParseAgentID(a); err != nil {
			return policy{}, fmt.Errorf("defaultArbiters: %q is not an agent id (agent://<peerId>/<name>)", a)
		}
	}
	out.arbiters = slices.Clone(p.DefaultArbiters)
	if p.Webhook != "" {
		u, err := url.Parse(p.Webhook)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return policy{}, fmt.Errorf("webhook %q: want an absolute http or https URL", p.Webhook)
		}
	}
	return out, nil
}

// spelled is the policy with every field spelled out.
func (p policy) spelled() DisputePolicy {
	return DisputePolicy{
		OnBreach:        p.onBreach,
		ConfirmWithin:   p.windows.ConfirmWithin.String(),
		RespondWithin:   p.windows.RespondWithin.String(),
		NegotiateFor:    p.windows.NegotiateFor.String(),
		RuleWithin:      p.windows.RuleWithin.String(),
		DefaultArbiters: slices.Clone(p.arbiters),
		Webhook:         p.webhook,
	}
}

func (p policy) record() ledger.Policy {
	s := p.spelled()
	return ledger.Policy{OnBreach: s.OnBreach, ConfirmWithin: s.ConfirmWithin, RespondWithin: s.RespondWithin,
		NegotiateFor: s.NegotiateFor, RuleWithin: s.RuleWithin, DefaultArbiters: s.DefaultArbiters, Webhook: s.Webhook}
}

// policyState is the policy in force (a leaf lock).
type policyState struct {
	mu  sync.Mutex
	cur policy
	// recorded is the last policy in the ledger.
	recorded *ledger.Policy
}

func (s *policyState) get() policy {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// putPolicy records p if it differs from the last recorded and puts it in
// force.
func (n *Node) putPolicy(ctx context.Context, p policy) error {
	ps := &n.disputes.policy
	rec := p.record()
	// No record means the defaults: a node that never changed them
	// records nothing.
	def, _ := resolvePolicy(DisputePolicy{})
	ps.mu.Lock()
	same := (ps.recorded != nil && samePolicy(*ps.recorded, rec)) || (ps.recorded == nil && samePolicy(def.record(), rec))
	ps.mu.Unlock()
	if !same {
		if _, err := n.record(ctx, "policy", ledger.PolicyRecord(n.now(), rec)); err != nil {
			return err
		}
	}
	ps.mu.Lock()
	ps.cur, ps.recorded = p, &rec
	ps.mu.Unlock()
	return nil
}

func samePolicy(a, b ledger.Policy) bool {
	return a.OnBreach == b.OnBreach && a.ConfirmWithin == b.ConfirmWithin && a.RespondWithin == b.RespondWithin &&
		a.NegotiateFor == b.NegotiateFor && a.RuleWithin == b.RuleWithin && a.Webhook == b.Webhook &&
		slices.Equal(a.DefaultArbiters, b.DefaultArbiters)
}

// DisputePolicy implements api.DisputeBackend.
func (n *Node) DisputePolicy(ctx context.Context) (DisputePolicy, error) {
	return n.disputes.policy.get().spelled(), nil
}

// SetDisputePolicy implements api.DisputeBackend: the policy is
// validated, recorded in the ledger, written to config.yaml (so a restart
// keeps it) and put in force.
func (n *Node) SetDisputePolicy(ctx context.Context, p DisputePolicy) (DisputePolicy, error) {
	pol, err := resolvePolicy(p)
	if err != nil {
		return DisputePolicy{}, badRequest("disputes policy: %v", err)
	}
	if err := n.writePolicyConfig(pol.spelled()); err != nil {
		return DisputePolicy{}, err
	}
	if err := n.putPolicy(ctx, pol); err != nil {
		return DisputePolicy{}, err
	}
	return pol.spelled(), nil
}

// writePolicyConfig replaces the disputes: section of the home's
// config.yaml, if the node has a home with one.
func (n *Node) writePolicyConfig(p DisputePolicy) error {
	if n.cfg.Home == "" {
		return nil
	}
	path := filepath.Join(n.cfg.Home, ConfigFile)
	b, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	var cfg Config
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	cfg.Disputes = p
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, out, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
