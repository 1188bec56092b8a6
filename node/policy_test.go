package node

import (
	"strings"
	"testing"
	"time"
)

// TestDisputePolicyValidation: every field of the disputes: section is
// checked with an error naming it, and empty fields take the defaults.
func TestDisputePolicyValidation(t *testing.T) {
	p, err := resolvePolicy(DisputePolicy{})
	if err != nil || p.onBreach != OnBreachNotify || p.windows.ConfirmWithin != 72*time.Hour || p.windows.NegotiateFor != 7*24*time.Hour {
		t.Fatalf("defaults: %+v, %v", p, err)
	}
	if s := p.spelled(); s.RuleWithin != "168h0m0s" || s.RespondWithin != "72h0m0s" {
		t.Fatalf("spelled: %+v", s)
	}
	for want, bad := range map[string]DisputePolicy{
		"onBreach":        {OnBreach: "sue"},
		"respondWithin":   {RespondWithin: "soon"},
		"negotiateFor":    {NegotiateFor: "-1h"},
		"ruleWithin":      {RuleWithin: "0s"},
		"confirmWithin":   {ConfirmWithin: "3 days"},
		"defaultArbiters": {DefaultArbiters: []string{"bob"}},
		"webhook":         {Webhook: "ftp://example.com/x"},
	} {
		if _, err := resolvePolicy(bad); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", want, err)
		}
		cfg := DefaultConfig("x")
		cfg.Home, cfg.Disputes = t.TempDir(), bad
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "disputes: "+want) {
			t.Errorf("config with a bad %s: %v", want, err)
		}
	}
}

func FuzzResolvePolicy(f *testing.F) {
	f.Add("file", "2s", "1h", "72h", "agent://x/y", "https://example.com/hook")
	f.Add("", "", "", "", "", "")
	f.Fuzz(func(t *testing.T, on, a, b, c, arb, hook string) {
		p, err := resolvePolicy(DisputePolicy{OnBreach: on, RespondWithin: a, NegotiateFor: b, RuleWithin: c, ConfirmWithin: a,
			DefaultArbiters: []string{arb}, Webhook: hook})
		if err != nil {
			return
		}
		// What is accepted spells back to itself.
		q, err := resolvePolicy(p.spelled())
		if err != nil || !samePolicy(p.record(), q.record()) {
			t.Fatalf("%+v does not spell back: %+v, %v", p, q, err)
		}
	})
}
