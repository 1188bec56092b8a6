// Package trustsim simulates organisations trading under the trust model of
// package trust, after the threat models of EigenTrust (Kamvar, Schlosser,
// Garcia-Molina, 2003): honest organisations, and a collective of colluding
// ones that trade among themselves, ballot-stuff (record fake fulfilled
// commitments with each other), bad-mouth their honest partners and, under
// camouflage, fulfil some of their deals with honest partners.
//
// Every round (one simulated day) each honest agent buys once: discovery
// offers it a few candidate sellers in other organisations and it picks the
// one its own node scores highest (or, with a small probability, any of
// them). Each colluding agent also buys once from a random honest seller,
// to earn trust (paying under camouflage) and to bad-mouth it; an honest
// seller refuses buyers its node scores below neutral. Both parties of every
// deal attest the other's outcome.
//
// The result counts the deals routed to the collective and the deals
// breached, against what picking partners without trust would give, and the
// trust mass the collective holds in honest observers' eyes, against the
// bound trust.Bound guarantees.
//
// A run is deterministic for its Params (the seed included).
package trustsim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/aspnode/asp/registry/trust"
)

// Threat is how the collective behaves.
type Threat int

// The threat models.
const (
	// Isolated: the collective trades only among itself (ballot-stuffing);
	// no honest organisation ever deals with it.
	Isolated Threat = iota
	// Collective: the collective sells to honest agents and breaches every
	// deal, buys from them without paying, ballot-stuffs and bad-mouths
	// (EigenTrust's threat model B).
	Collective
	// Camouflage: as Collective, but every deal with an honest partner is
	// fulfilled with probability Params.Camouflage (threat model C).
	Camouflage
)

// String names the threat.
func (t Threat) String() string {
	switch t {
	case Isolated:
		return "isolated"
	case Collective:
		return "collective"
	case Camouflage:
		return "camouflage"
	}
	return "Threat(" + strconv.Itoa(int(t)) + ")"
}

// Params describe a run. Zero fields take the defaults of DefaultParams
// (except Malicious, Camouflage, Explore, WarmUp and NoBadMouth, whose zero
// is meaningful).
type Params struct {
	Seed uint64
	// Orgs is the number of organisations; AgentsPerOrg their agents.
	Orgs, AgentsPerOrg int
	// Malicious is the share of organisations in the collective, in [0, 1).
	Malicious float64
	Threat    Threat
	// Camouflage is the probability a colluder fulfils a deal with an honest
	// partner (Camouflage threat only).
	Camouflage float64
	// Rounds of trading; each round is one day. In the first WarmUp rounds
	// only honest agents trade: the collective joins a running network.
	// With WarmUp 0 everybody starts unknown on day one (a cold start).
	Rounds, WarmUp int
	// Candidates is the number of sellers discovery offers per purchase.
	Candidates int
	// Explore is the probability a purchase goes to a random candidate
	// instead of the best scored one.
	Explore float64
	// Reliability is the probability an honest agent fulfils a deal.
	Reliability float64
	// BallotStuff is the number of fake commitments each colluding agent
	// records per round with other colluders (each attested fulfilled by
	// both sides).
	BallotStuff int
	// NoBadMouth makes colluders attest truthfully about honest partners.
	NoBadMouth bool
	// PreTrusted is the number of honest organisations every honest node
	// pre-trusts (never a colluder).
	PreTrusted int
	// Config is the trust model's configuration (PreTrusted is filled in).
	Config trust.Config
}

// DefaultParams returns the parameters of the report in docs/trust.md
// (with Malicious, Threat and Camouflage varied).
func DefaultParams() Params {
	return Params{
		Seed:         1,
		Orgs:         60,
		AgentsPerOrg: 2,
		Malicious:    0.3,
		Threat:       Camouflage,
		Camouflage:   0.5,
		Rounds:       40,
		WarmUp:       10,
		Candidates:   6,
		Explore:      0.1,
		Reliability:  0.98,
		BallotStuff:  5,
		PreTrusted:   3,
	}
}

func (p Params) withDefaults() Params {
	d := DefaultParams()
	set := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	set(&p.Orgs, d.Orgs)
	set(&p.AgentsPerOrg, d.AgentsPerOrg)
	set(&p.Rounds, d.Rounds)
	set(&p.Candidates, d.Candidates)
	set(&p.BallotStuff, d.BallotStuff)
	set(&p.PreTrusted, d.PreTrusted)
	if p.Reliability == 0 {
		p.Reliability = d.Reliability
	}
	return p
}

// Result is what a run measured. Deal shares count the purchases of honest
// agents after the warm-up.
type Result struct {
	Params Params
	// Deals is the number of purchases honest agents made.
	Deals int
	// ToCollective is the share that went to colluders; Uniform the share
	// they would get if sellers were picked without trust (their share of
	// the agents discovery offers).
	ToCollective, Uniform float64
	// Breached is the share of purchases that were breached (by anyone);
	// UniformBreached the share expected without trust.
	Breached, UniformBreached float64
	// HonestShare is the collective's share of the fulfilled commitments
	// honest agents attested (as buyers or sellers, over the whole run): its
	// honest share of trade, what honest organisations' trust is built on.
	HonestShare float64
	// Refused is the number of colluders' purchases honest sellers refused.
	Refused int
	// Mass is the trust mass the collective holds at the end, averaged over
	// the honest observers, and Limit the average of its guaranteed bound
	// (trust.Bound). MaxExcess is the largest Mass-Limit any observer saw in
	// any round (≤ 0, up to rounding, when the bound holds).
	Mass, Limit, MaxExcess float64
	// ColluderScore and HonestScore are the average scores of colluding and
	// honest agents in honest observers' eyes at the end, and Weight the
	// average endorsement weight of a colluding agent (the summed weight of
	// the organisations attesting it).
	ColluderScore, HonestScore, Weight float64
	// Rounds traces the run round by round.
	Rounds []Round
}

// Round is what one round measured: observer averages before its deals,
// and the share of its purchases that went to the collective.
type Round struct {
	ToCollective                             float64
	Mass, Weight, ColluderScore, HonestScore float64
}

// Epoch is the simulated time of round 0.
var Epoch = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)

type agent struct {
	id  string
	org int
}

type sim struct {
	p         Params
	rng       *rand.Rand
	model     *trust.Model
	orgs      []string
	mal       []bool
	malOrgs   []string
	agents    []agent
	honest    []agent
	colluders []agent
	observers []int // honest organisations
	views     []*trust.Snapshot
	cmt       int
	res       Result
	// Fulfilled commitments attested by honest agents, and those of them
	// about colluders.
	honestPos, honestPosCol int
}

// Run simulates one scenario.
func Run(p Params) (Result, error) {
	p = p.withDefaults()
	if !(p.Malicious >= 0 && p.Malicious < 1) {
		return Result{}, fmt.Errorf("trustsim: Malicious %v not in [0, 1)", p.Malicious)
	}
	s := &sim{p: p, rng: rand.New(rand.NewPCG(p.Seed, p.Seed^0x9e3779b97f4a7c15))}
	s.res.Params = p
	if err := s.setup(); err != nil {
		return Result{}, err
	}
	var toCol, breached int
	for r := 0; r < p.Rounds; r++ {
		now := Epoch.Add(time.Duration(r) * trust.Day)
		s.computeViews(now)
		rd := s.measure()
		active := r >= p.WarmUp
		if r == p.WarmUp {
			s.res.Deals, toCol, breached = 0, 0, 0
		}
		deals0, toCol0 := s.res.Deals, toCol
		if active {
			s.collude(now)
		}
		for _, a := range s.honest {
			b, ok := s.pickSeller(a, active)
			if !ok {
				continue
			}
			s.res.Deals++
			kept := s.deal(a, b, now)
			if s.mal[b.org] {
				toCol++
			}
			if !kept {
				breached++
			}
		}
		if d := s.res.Deals - deals0; d > 0 {
			rd.ToCollective = float64(toCol-toCol0) / float64(d)
		}
		s.res.Rounds = append(s.res.Rounds, rd)
	}
	s.computeViews(Epoch.Add(time.Duration(p.Rounds) * trust.Day))
	fin := s.measure()
	res := &s.res
	res.Mass, res.Weight, res.ColluderScore, res.HonestScore = fin.Mass, fin.Weight, fin.ColluderScore, fin.HonestScore
	for _, i := range s.observers {
		res.Limit += s.views[i].Collective(s.malOrgs).Limit / float64(len(s.observers))
	}
	if res.Deals > 0 {
		res.ToCollective = float64(toCol) / float64(res.Deals)
		res.Breached = float64(breached) / float64(res.Deals)
	}
	if s.honestPos > 0 {
		res.HonestShare = float64(s.honestPosCol) / float64(s.honestPos)
	}
	// Without trust a buyer picks any agent of another organisation.
	if p.Threat != Isolated {
		res.Uniform = float64(len(s.colluders)) / float64(len(s.agents)-p.AgentsPerOrg)
	}
	keep := 0.0
	if p.Threat == Camouflage {
		keep = p.Camouflage
	}
	res.UniformBreached = res.Uniform*(1-keep) + (1-res.Uniform)*(1-p.Reliability)
	return *res, nil
}

func (s *sim) setup() error {
	p := s.p
	s.orgs = make([]string, p.Orgs)
	for i := range s.orgs {
		s.orgs[i] = fmt.Sprintf("org%03d", i)
	}
	nMal := int(p.Malicious*float64(p.Orgs) + 0.5)
	s.mal = make([]bool, p.Orgs)
	for k, i := range s.rng.Perm(p.Orgs) {
		s.mal[i] = k < nMal
	}
	var honestOrgs []string
	for i, o := range s.orgs {
		if s.mal[i] {
			s.malOrgs = append(s.malOrgs, o)
		} else {
			honestOrgs = append(honestOrgs, o)
			s.observers = append(s.observers, i)
		}
		for k := range p.AgentsPerOrg {
			a := agent{id: fmt.Sprintf("agent://%s/a%d", o, k), org: i}
			s.agents = append(s.agents, a)
			if s.mal[i] {
				s.colluders = append(s.colluders, a)
			} else {
				s.honest = append(s.honest, a)
			}
		}
	}
	if len(honestOrgs) < 2 {
		return fmt.Errorf("trustsim: fewer than two honest organisations")
	}
	cfg := p.Config
	cfg.PreTrusted = slices.Clone(honestOrgs[:min(p.PreTrusted, len(honestOrgs))])
	m, err := trust.New(cfg)
	if err != nil {
		return err
	}
	s.model = m
	s.views = make([]*trust.Snapshot, p.Orgs)
	s.res.MaxExcess = -1
	return nil
}

// commitment returns a fresh commitment id.
func (s *sim) commitment() string {
	s.cmt++
	return "cmt_" + strconv.Itoa(s.cmt)
}

// attest records that a says b did o in commitment c.
func (s *sim) attest(c string, a, b agent, o trust.Outcome, t time.Time) {
	if !s.mal[a.org] && o == trust.Fulfilled {
		s.honestPos++
		if s.mal[b.org] {
			s.honestPosCol++
		}
	}
	if err := s.model.Add(trust.Evidence{
		Attester: a.id, Subject: b.id, CommitmentID: c, Outcome: o, Time: t,
	}); err != nil {
		panic(err) // the simulation makes only valid evidence
	}
}

func (s *sim) computeViews(now time.Time) {
	for _, i := range s.observers {
		s.views[i] = s.model.Compute(s.orgs[i], now)
	}
}

func (s *sim) score(viewer int, a agent) float64 { return s.views[viewer].Score(a.id).Score }

// collude runs the collective's own moves for one round.
func (s *sim) collude(now time.Time) {
	p := s.p
	if len(s.malOrgs) > 1 {
		for _, a := range s.colluders {
			for range p.BallotStuff {
				b := s.colluders[s.rng.IntN(len(s.colluders))]
				if b.org != a.org {
					c := s.commitment()
					s.attest(c, a, b, trust.Fulfilled, now)
					s.attest(c, b, a, trust.Fulfilled, now)
				}
			}
		}
	}
	if p.Threat == Isolated {
		return
	}
	// Each colluder buys from a random honest seller, who refuses buyers its
	// node scores below neutral.
	for _, a := range s.colluders {
		seller := s.honest[s.rng.IntN(len(s.honest))]
		if s.score(seller.org, a) < trust.NeutralScore {
			s.res.Refused++
			continue
		}
		c := s.commitment()
		pays := p.Threat == Camouflage && s.rng.Float64() < p.Camouflage
		if s.rng.Float64() < p.Reliability {
			s.attest(c, a, seller, s.badMouth(trust.Fulfilled), now)
		} else {
			s.attest(c, a, seller, trust.Breached, now)
		}
		if pays {
			s.attest(c, seller, a, trust.Fulfilled, now)
		} else {
			s.attest(c, seller, a, trust.Breached, now)
		}
	}
}

// badMouth is what a colluder says about an honest partner who did o.
func (s *sim) badMouth(o trust.Outcome) trust.Outcome {
	if s.p.NoBadMouth {
		return o
	}
	return trust.Breached
}

// pickSeller is an honest buyer's choice among the candidates discovery
// offers.
func (s *sim) pickSeller(a agent, active bool) (agent, bool) {
	p := s.p
	var cands []agent
	for tries := 0; len(cands) < p.Candidates && tries < 20*p.Candidates; tries++ {
		c := s.agents[s.rng.IntN(len(s.agents))]
		if c.org == a.org || (s.mal[c.org] && (!active || p.Threat == Isolated)) || slices.Contains(cands, c) {
			continue
		}
		cands = append(cands, c)
	}
	if len(cands) == 0 {
		return agent{}, false
	}
	if s.rng.Float64() < p.Explore {
		return cands[s.rng.IntN(len(cands))], true
	}
	var b agent
	best, n := -1.0, 0
	for _, c := range cands {
		switch sc := s.score(a.org, c); {
		case sc > best:
			best, b, n = sc, c, 1
		case sc == best:
			n++
			if s.rng.IntN(n) == 0 { // uniform among ties
				b = c
			}
		}
	}
	return b, true
}

// deal plays one purchase of honest buyer a from seller b and reports
// whether the seller kept it. The buyer always pays.
func (s *sim) deal(a, b agent, now time.Time) bool {
	var kept bool
	switch {
	case !s.mal[b.org]:
		kept = s.rng.Float64() < s.p.Reliability
	case s.p.Threat == Camouflage:
		kept = s.rng.Float64() < s.p.Camouflage
	}
	out := trust.Breached
	if kept {
		out = trust.Fulfilled
	}
	c := s.commitment()
	s.attest(c, a, b, out, now)
	if s.mal[b.org] {
		s.attest(c, b, a, s.badMouth(trust.Fulfilled), now)
	} else {
		s.attest(c, b, a, trust.Fulfilled, now)
	}
	return kept
}

// measure averages over the honest observers' current views.
func (s *sim) measure() Round {
	var rd Round
	var nc, nh int
	for _, i := range s.observers {
		v := s.views[i]
		b := v.Collective(s.malOrgs)
		s.res.MaxExcess = max(s.res.MaxExcess, b.Mass-b.Limit)
		rd.Mass += b.Mass
		for _, a := range s.colluders {
			x := v.Explain(a.id)
			rd.ColluderScore += x.Score
			rd.Weight += x.Components.Endorsement.Weight
			nc++
		}
		for _, a := range s.honest {
			if a.org != i {
				rd.HonestScore += v.Score(a.id).Score
				nh++
			}
		}
	}
	rd.Mass /= float64(len(s.observers))
	if nc > 0 {
		rd.ColluderScore /= float64(nc)
		rd.Weight /= float64(nc)
	}
	if nh > 0 {
		rd.HonestScore /= float64(nh)
	}
	return rd
}
