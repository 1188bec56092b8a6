// Package trustsim simulates organisations trading under the trust model of
// package trust, after the threat models of EigenTrust (Kamvar, Schlosser,
// Garcia-Molina, 2003): honest organisations, and a collective of colluding
// ones that trade among themselves, ballot-stuff (record fake fulfilled
// commitments with each other), bad-mouth their honest partners and, under
// camouflage, fulfil some of their deals with honest partners.
//
// Every honest agent makes one deal per round: it asks discovery for a few
// candidate partners in other organisations and picks the one its own node
// scores highest (or, with a small probability, any of them). The report
// counts how many deals the collective receives and breaches, and how much
// of the observers' trust it captures.
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
	// Collective: the collective accepts deals from honest agents and
	// breaches every one (EigenTrust's threat model B), while ballot-stuffing
	// and bad-mouthing.
	Collective
	// Camouflage: as Collective, but a deal with an honest partner is
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

// Params describe a run. Zero fields take the defaults of DefaultParams.
type Params struct {
	Seed uint64
	// Orgs is the number of organisations; AgentsPerOrg their agents.
	Orgs, AgentsPerOrg int
	// Malicious is the share of organisations in the collective (0 … 1).
	Malicious float64
	Threat    Threat
	// Camouflage is the probability a colluder fulfils a deal with an
	// honest partner (Camouflage threat only).
	Camouflage float64
	// Rounds of trading; each round is one day. The first WarmUp of them
	// are honest trade only: the collective joins a running network.
	Rounds, WarmUp int
	// Candidates is the number of partners discovery offers per deal.
	Candidates int
	// Explore is the probability a deal goes to a random candidate instead
	// of the best scored one.
	Explore float64
	// Reliability is the probability an honest agent fulfils a deal.
	Reliability float64
	// BallotStuff is the number of fake commitments each colluding agent
	// records per round with other colluders (each attested fulfilled by
	// both sides).
	BallotStuff int
	// Honest disables bad-mouthing: colluders attest truthfully about
	// their honest partners.
	NoBadMouth bool
	// PreTrusted is the number of honest organisations every honest node
	// pre-trusts (never a colluder).
	PreTrusted int
	// Config is the trust model's configuration (PreTrusted is filled in).
	Config trust.Config
}

// DefaultParams returns the parameters of the report in docs/trust.md.
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
	if p.Orgs == 0 {
		p.Orgs = d.Orgs
	}
	if p.AgentsPerOrg == 0 {
		p.AgentsPerOrg = d.AgentsPerOrg
	}
	if p.Rounds == 0 {
		p.Rounds = d.Rounds
	}
	if p.Candidates == 0 {
		p.Candidates = d.Candidates
	}
	if p.Reliability == 0 {
		p.Reliability = d.Reliability
	}
	if p.PreTrusted == 0 {
		p.PreTrusted = d.PreTrusted
	}
	return p
}

// Result is what a run measured.
type Result struct {
	Params Params
	// Deals is the number of deals honest agents made after the warm-up;
	// ToCollective the
	// share that went to colluders and Breached the share that was broken
	// (by anyone). Uniform is the share colluders would get if partners were
	// picked without trust (their share of agents).
	Deals                           int
	ToCollective, Breached, Uniform float64
	// HonestShare is the collective's share of the deals fulfilled for
	// honest agents: what it actually delivered.
	HonestShare float64
	// Mass is the trust mass the collective holds, averaged over the honest
	// observers at the end; Limit the average guaranteed bound on it
	// (trust.Bound), and MaxExcess the largest Mass-Limit seen by any
	// observer in any round (≤ 0 up to rounding if the bound holds).
	Mass, Limit, MaxExcess float64
	// Weight is the average endorsement weight (the sum of the weights of
	// its attesters) of a colluding agent, and ColluderScore / HonestScore the average scores of colluding and
	// honest agents, over the honest observers at the end.
	Weight, ColluderScore, HonestScore float64
	// Rounds traces the run round by round.
	Rounds []Round
}

// Round is what one round of a run measured (observer averages are taken
// over honest observers before the round's deals).
type Round struct {
	// ToCollective is the share of the round's deals that went to colluders.
	ToCollective float64
	// Mass, Weight, ColluderScore, HonestScore as in Result.
	Mass, Weight, ColluderScore, HonestScore float64
}

// Epoch is the simulated time of round 0.
var Epoch = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)

// Run simulates one scenario.
func Run(p Params) (Result, error) {
	p = p.withDefaults()
	if p.Malicious < 0 || p.Malicious >= 1 {
		return Result{}, fmt.Errorf("trustsim: Malicious %v not in [0, 1)", p.Malicious)
	}
	rng := rand.New(rand.NewPCG(p.Seed, p.Seed^0x9e3779b97f4a7c15))

	type agent struct {
		id  string
		org int
	}
	orgs := make([]string, p.Orgs)
	for i := range orgs {
		orgs[i] = fmt.Sprintf("org%03d", i)
	}
	perm := rng.Perm(p.Orgs)
	nMal := int(p.Malicious*float64(p.Orgs) + 0.5)
	mal := make([]bool, p.Orgs)
	var malOrgs, honestOrgs []string
	for k, i := range perm {
		if k < nMal {
			mal[i] = true
		}
	}
	for i, o := range orgs {
		if mal[i] {
			malOrgs = append(malOrgs, o)
		} else {
			honestOrgs = append(honestOrgs, o)
		}
	}
	cfg := p.Config
	cfg.PreTrusted = slices.Clone(honestOrgs[:min(p.PreTrusted, len(honestOrgs))])
	model, err := trust.New(cfg)
	if err != nil {
		return Result{}, err
	}

	var agents, honestAgents, malAgents []agent
	for i, o := range orgs {
		for k := range p.AgentsPerOrg {
			a := agent{id: fmt.Sprintf("agent://%s/a%d", o, k), org: i}
			agents = append(agents, a)
			if mal[i] {
				malAgents = append(malAgents, a)
			} else {
				honestAgents = append(honestAgents, a)
			}
		}
	}

	res := Result{Params: p, Uniform: float64(len(malAgents)) / float64(len(agents))}
	if p.Threat == Isolated {
		res.Uniform = 0
	}
	cmt := 0
	attest := func(a, s agent, o trust.Outcome, t time.Time) {
		cmt++
		if err := model.Add(trust.Evidence{
			Attester: a.id, Subject: s.id, CommitmentID: "cmt_" + strconv.Itoa(cmt), Outcome: o, Time: t,
		}); err != nil {
			panic(err) // the simulation makes only valid evidence
		}
	}
	var toCol, breached, fulfilled, fulfilledByCol int
	var observers []int
	for i := range orgs {
		if !mal[i] {
			observers = append(observers, i)
		}
	}
	views := make([]*trust.Snapshot, p.Orgs)
	res.MaxExcess = -1
	measure := func() Round {
		var rd Round
		var nc, nh int
		for _, i := range observers {
			v := views[i]
			b := v.Collective(malOrgs)
			res.MaxExcess = max(res.MaxExcess, b.Mass-b.Limit)
			rd.Mass += b.Mass
			for _, a := range malAgents {
				e := v.Explain(a.id)
				rd.ColluderScore += e.Score
				rd.Weight += e.Components.Endorsement.Weight
				nc++
			}
			for _, a := range honestAgents {
				if a.org != i {
					rd.HonestScore += v.Score(a.id).Score
					nh++
				}
			}
		}
		no := float64(len(observers))
		rd.Mass /= no
		if nc > 0 {
			rd.ColluderScore /= float64(nc)
			rd.Weight /= float64(nc)
		}
		if nh > 0 {
			rd.HonestScore /= float64(nh)
		}
		return rd
	}
	cands := make([]agent, 0, p.Candidates)
	for r := 0; r < p.Rounds; r++ {
		now := Epoch.Add(time.Duration(r) * trust.Day)
		for _, i := range observers {
			views[i] = model.Compute(orgs[i], now)
		}
		rd := measure()
		deals0, toCol0 := res.Deals, toCol
		active := r >= p.WarmUp
		if active && r == p.WarmUp {
			res.Deals, toCol, breached, fulfilled, fulfilledByCol = 0, 0, 0, 0, 0
			deals0, toCol0 = 0, 0
		}
		// The collective stuffs ballots.
		if active && len(malOrgs) > 1 {
			for _, a := range malAgents {
				for range p.BallotStuff {
					b := malAgents[rng.IntN(len(malAgents))]
					if b.org == a.org {
						continue
					}
					attest(a, b, trust.Fulfilled, now)
					attest(b, a, trust.Fulfilled, now)
				}
			}
		}
		// Honest agents trade.
		for _, a := range honestAgents {
			cands = cands[:0]
			for tries := 0; len(cands) < p.Candidates && tries < 20*p.Candidates; tries++ {
				c := agents[rng.IntN(len(agents))]
				if c.org == a.org || (mal[c.org] && (!active || p.Threat == Isolated)) || slices.Contains(cands, c) {
					continue
				}
				cands = append(cands, c)
			}
			if len(cands) == 0 {
				continue
			}
			var b agent
			if rng.Float64() < p.Explore {
				b = cands[rng.IntN(len(cands))]
			} else {
				best, n := -1.0, 0
				for _, c := range cands {
					s := views[a.org].Score(c.id).Score
					switch {
					case s > best:
						best, b, n = s, c, 1
					case s == best:
						n++
						if rng.IntN(n) == 0 { // uniform among ties
							b = c
						}
					}
				}
			}
			res.Deals++
			ok := false
			switch {
			case !mal[b.org]:
				ok = rng.Float64() < p.Reliability
			case p.Threat == Camouflage:
				ok = rng.Float64() < p.Camouflage
			}
			out := trust.Breached
			if ok {
				out = trust.Fulfilled
				fulfilled++
			} else {
				breached++
			}
			attest(a, b, out, now)
			if mal[b.org] {
				toCol++
				if ok {
					fulfilledByCol++
				}
				if p.NoBadMouth {
					attest(b, a, trust.Fulfilled, now)
				} else {
					attest(b, a, trust.Breached, now) // bad-mouthing
				}
			} else {
				attest(b, a, trust.Fulfilled, now)
			}
		}
		if d := res.Deals - deals0; d > 0 {
			rd.ToCollective = float64(toCol-toCol0) / float64(d)
		}
		res.Rounds = append(res.Rounds, rd)
	}
	end := Epoch.Add(time.Duration(p.Rounds) * trust.Day)
	for _, i := range observers {
		views[i] = model.Compute(orgs[i], end)
	}
	fin := measure()
	res.Mass, res.Weight, res.ColluderScore, res.HonestScore = fin.Mass, fin.Weight, fin.ColluderScore, fin.HonestScore
	for _, i := range observers {
		res.Limit += views[i].Collective(malOrgs).Limit / float64(len(observers))
	}
	if res.Deals > 0 {
		res.ToCollective = float64(toCol) / float64(res.Deals)
		res.Breached = float64(breached) / float64(res.Deals)
	}
	if fulfilled > 0 {
		res.HonestShare = float64(fulfilledByCol) / float64(fulfilled)
	}
	return res, nil
}
