package trust

import (
	"slices"
	"strings"
	"time"
)

// Snapshot is the result of one Compute: every known agent's score as seen
// by one observer at one time. It is immutable and safe for concurrent use.
type Snapshot struct {
	observer   string
	now        time.Time
	anchored   bool
	iterations int
	residual   float64

	agentNames []string // sorted; expl[i] is agentNames[i]
	expl       []Explanation
	orgNames   []string // sorted; mass[i] is orgNames[i]'s
	mass       []float64
	weight     []float64
	orgRank    []int32 // org id -> rank
	rankedOrgs []int32 // rank -> org id
	damping    float64
	tr         trustResult
	// equivocated: organisations under the hard rule, sorted.
	equivocated []string
}

// Score is the short form of a trust score.
type Score struct {
	// Score is 0–100, rounded to two decimals.
	Score float64 `json:"score"`
	// Level is L0 … L4 (see LevelFor).
	Level Level `json:"level"`
	// Completed counts the subject's fulfilled (or dispute-won) commitments
	// attested by organisations the observer gives weight.
	Completed int `json:"completed"`
}

// Explanation is a score with every component that makes it, so a person
// can see why. The score is
//
//	raw   = 100 · Fulfilment · (VolumeFloor + (1-VolumeFloor)·Volume) · DisputesLost
//	score = NeutralScore + (raw - NeutralScore) · Recency   if raw > NeutralScore
//	score = raw                                             otherwise
//
// (see docs/trust.md for each component's formula).
type Explanation struct {
	AgentID   string  `json:"agentId"`
	Score     float64 `json:"score"`
	Level     Level   `json:"level"`
	Completed int     `json:"completed"`
	// Known reports whether the model holds any evidence about the agent.
	Known      bool       `json:"known"`
	Components Components `json:"components"`
	// LastEvidence is the time of the newest counted evidence (zero if none).
	LastEvidence time.Time `json:"lastEvidence,omitzero"`
	// Counts are the counted evidence items by outcome (from attesters with
	// weight; one per attester and commitment).
	Counts Counts `json:"counts"`
	// Equivocated is set when the agent's organisation is proven to have
	// signed two histories of its ledger: the score is 0 for good
	// (Model.Equivocated).
	Equivocated bool `json:"equivocated,omitempty"`
	// Ignored are items about the agent that count nothing, by reason.
	Ignored Ignored `json:"ignored"`
}

// Components of a score. Every Value is a factor in [0, 1].
type Components struct {
	// Fulfilment is the Beta estimate (R+1)/(R+S+2): Weight is R+S, the
	// aged, value- and attester-weighted evidence; Evidence the item count.
	Fulfilment Component `json:"fulfilment"`
	// Volume is log(1+C)/log(1+VolumeSaturation), capped at 1: Weight is C,
	// the attester-weighted completed count; Evidence the raw count.
	Volume Component `json:"volume"`
	// Recency is the idle decay: 1 within IdleGrace of the last completed
	// commitment, then halving every IdleHalfLife. It pulls a score above
	// neutral towards neutral; it never lifts a score below neutral. Weight
	// is the idle time in days, Evidence the completed count.
	Recency Component `json:"recency"`
	// DisputesLost is the breach factor exp(-P): Weight is P, the aged,
	// weighted penalty of breaches, expiries and lost disputes; Evidence
	// their count.
	DisputesLost Component `json:"disputesLost"`
	// Endorsement is the share of the evidence (aged units) that comes from
	// attesters the observer trusts, weighted by their weight: Evidence is
	// the number of attesting organisations with weight, Weight the sum of
	// their weights.
	Endorsement Component `json:"endorsement"`
}

// Component is one factor of a score.
type Component struct {
	Value    float64 `json:"value"`
	Evidence int     `json:"evidence"`
	Weight   float64 `json:"weight"`
}

// Counts are evidence items by outcome.
type Counts struct {
	Fulfilled   int `json:"fulfilled"`
	Breached    int `json:"breached"`
	DisputeLost int `json:"disputeLost"`
	DisputeWon  int `json:"disputeWon"`
	Cancelled   int `json:"cancelled"`
	Expired     int `json:"expired"`
	// Contested counts the breaches and expiries the accused answered with
	// its own attestation of the complainer on the same commitment ("he
	// said, she said"): they count (w_c/(w_c+w_a))² of themselves, w_c the
	// complainer's and w_a the accused organisation's weight. Lost disputes
	// are rulings and never contested.
	Contested int `json:"contested"`
}

// Ignored counts evidence about an agent that counts nothing.
type Ignored struct {
	// Self: the agent attested about itself (rejected by Add).
	Self int `json:"self"`
	// SameOrg: an agent of its own organisation attested (rejected by Add).
	SameOrg int `json:"sameOrg"`
	// Unendorsed: attesters whose organisation the observer gives no weight
	// (no trust path from the observer's anchors reaches them).
	Unendorsed int `json:"unendorsed"`
	// Future: dated after the compute time plus Config.MaxClockSkew.
	Future int `json:"future"`
}

// Short returns the score, level and completed count.
func (e Explanation) Short() Score {
	return Score{Score: e.Score, Level: e.Level, Completed: e.Completed}
}

// Map flattens the components for an API answer: "fulfilment", "volume",
// "recency", "disputesLost", "endorsement" are the values, and each has
// ".evidence" and ".weight" companions.
func (c Components) Map() map[string]float64 {
	out := make(map[string]float64, 15)
	for _, kv := range []struct {
		k string
		c Component
	}{
		{"fulfilment", c.Fulfilment}, {"volume", c.Volume}, {"recency", c.Recency},
		{"disputesLost", c.DisputesLost}, {"endorsement", c.Endorsement},
	} {
		out[kv.k] = kv.c.Value
		out[kv.k+".evidence"] = float64(kv.c.Evidence)
		out[kv.k+".weight"] = kv.c.Weight
	}
	return out
}

// Neutral returns the explanation of an agent without counted evidence.
func Neutral(agentID string) Explanation {
	return Explanation{
		AgentID: agentID,
		Score:   NeutralScore,
		Level:   LevelFor(NeutralScore, 0),
		Components: Components{
			Fulfilment:   Component{Value: 0.5},
			Recency:      Component{Value: 1},
			DisputesLost: Component{Value: 1},
		},
	}
}

// Observer returns the organisation the scores are seen from.
func (s *Snapshot) Observer() string { return s.observer }

// Time returns the time the scores were computed for.
func (s *Snapshot) Time() time.Time { return s.now }

// Anchored reports whether the observer had anything to anchor trust on
// (positive direct counterparties or pre-trusted organisations present in
// the evidence). If not, only the observer's own agents' evidence counts.
func (s *Snapshot) Anchored() bool { return s.anchored }

// Iterations returns the number of power iterations EigenTrust ran, and the
// L1 change of the last one.
func (s *Snapshot) Iterations() (n int, residual float64) { return s.iterations, s.residual }

// Len returns the number of agents in the snapshot.
func (s *Snapshot) Len() int { return len(s.agentNames) }

// Agents returns the known agent ids in sorted order.
func (s *Snapshot) Agents() []string { return slices.Clone(s.agentNames) }

// Explain returns the agent's score with its components; an agent the model
// does not know gets Neutral(agentID).
func (s *Snapshot) Explain(agentID string) Explanation {
	if i, ok := slices.BinarySearch(s.agentNames, agentID); ok {
		return s.expl[i]
	}
	e := Neutral(agentID)
	if len(s.equivocated) > 0 && s.isEquivocated(OrgOf(agentID)) {
		e.Score, e.Level, e.Equivocated = 0, LevelFor(0, 0), true
	}
	return e
}

// Known reports whether the model holds evidence about the agent (as
// subject or attester).
func (s *Snapshot) Known(agentID string) bool {
	_, ok := slices.BinarySearch(s.agentNames, agentID)
	return ok
}

// Score returns the agent's score, level and completed count.
func (s *Snapshot) Score(agentID string) Score { return s.Explain(agentID).Short() }

// All calls fn for every known agent in sorted order until fn returns false.
func (s *Snapshot) All(fn func(Explanation) bool) {
	for i := range s.expl {
		if !fn(s.expl[i]) {
			return
		}
	}
}

// Orgs returns the known organisations in sorted order.
func (s *Snapshot) Orgs() []string { return slices.Clone(s.orgNames) }

// OrgMass returns the organisation's share of the observer's trust (its
// personalised EigenTrust value; the values of all organisations sum to 1
// when anchored, else all are 0).
func (s *Snapshot) OrgMass(org string) float64 {
	if i, ok := slices.BinarySearch(s.orgNames, org); ok {
		return s.mass[i]
	}
	return 0
}

// OrgWeight returns the weight the observer gives one unit of evidence from
// the organisation's agents (0 … MaxWeight; at least 1 for the observer
// itself): its trust mass per unit of evidence it attests, relative to the
// anchors'. A node can feed it to GossipSub peer scoring as the
// application-specific score of the organisation's peer.
func (s *Snapshot) OrgWeight(org string) float64 {
	if i, ok := slices.BinarySearch(s.orgNames, org); ok {
		return s.weight[i]
	}
	if org == s.observer {
		return 1
	}
	return 0
}

// OrgOf returns the organisation part of an agent id ("" if malformed).
func OrgOf(agentID string) string {
	rest, ok := strings.CutPrefix(agentID, AgentScheme)
	if !ok {
		return ""
	}
	org, _, _ := strings.Cut(rest, "/")
	return org
}

// Bound describes the trust a set K of organisations captures in a snapshot,
// against the limit personalised EigenTrust guarantees:
//
//	Mass ≤ Limit = ((1-α)·Inflow + PreTrust) / α
//
// where Inflow = Σ_{i∉K} t_i·c_iK is the trust the other organisations
// route into K per step and PreTrust = p(K). A set nobody outside it trusts
// (Inflow 0) and nobody pre-trusts has Mass 0.
type Bound struct {
	Mass, Inflow, PreTrust, Limit float64
}

// Collective returns the Bound of the given organisations (unknown names
// are skipped).
func (s *Snapshot) Collective(orgs []string) Bound {
	in := make([]bool, len(s.orgRank))
	for _, o := range orgs {
		if r, ok := slices.BinarySearch(s.orgNames, o); ok {
			in[s.rankedOrgs[r]] = true
		}
	}
	var b Bound
	if !s.anchored {
		return b
	}
	for r, id := range s.rankedOrgs {
		if in[id] {
			b.Mass += s.tr.mass[id]
			b.PreTrust += s.tr.pre[id]
			continue
		}
		into := 0.0
		for k := s.tr.start[r]; k < s.tr.start[r+1]; k++ {
			if in[s.tr.cols[k]] {
				into += s.tr.vals[k]
			}
		}
		b.Inflow += s.tr.mass[id] * into
	}
	a := s.damping
	b.Limit = ((1-a)*b.Inflow + b.PreTrust) / a
	return b
}
