package trustsim

import (
	"fmt"
	"strings"
)

// ReportShares are the collective sizes of the report.
var ReportShares = []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7}

// scenario is one table of the report.
type scenario struct {
	title      string
	threat     Threat
	camouflage float64
	warmUp     int
}

var reportScenarios = []scenario{
	{"Isolated collective (trades only among itself)", Isolated, 0, 10},
	{"Collective that breaches every deal with honest partners", Collective, 0, 10},
	{"Camouflage: fulfils 50 % of its deals with honest partners", Camouflage, 0.5, 10},
	{"Camouflage: fulfils 90 % of its deals with honest partners", Camouflage, 0.9, 10},
	{"Cold start, camouflage 50 % (everybody unknown on day one)", Camouflage, 0.5, 0},
	{"Cold start, camouflage 90 % (everybody unknown on day one)", Camouflage, 0.9, 0},
}

// Report runs every scenario of docs/trust.md with the given seed and
// returns the tables in Markdown. progress, if not nil, is called after each
// run.
func Report(seed uint64, progress func(Result)) (string, error) {
	var b strings.Builder
	d := DefaultParams()
	fmt.Fprintf(&b, "Seed %d; %d organisations × %d agents, %d rounds (days) of which %d warm-up, "+
		"%d candidates per purchase, %.0f %% exploration, honest reliability %.0f %%, "+
		"%d fake commitments per colluding agent per round, %d pre-trusted honest organisations.\n",
		seed, d.Orgs, d.AgentsPerOrg, d.Rounds, d.WarmUp, d.Candidates, 100*d.Explore, 100*d.Reliability, d.BallotStuff, d.PreTrusted)
	for _, sc := range reportScenarios {
		fmt.Fprintf(&b, "\n**%s**\n\n", sc.title)
		b.WriteString("| colluding orgs | deals to collective (no trust) | deals breached (no trust) | collective's trust mass | guaranteed limit | its honest share of trade | mass ÷ share | colluder / honest score |\n")
		b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, m := range ReportShares {
			p := DefaultParams()
			p.Seed, p.Malicious, p.Threat, p.Camouflage, p.WarmUp = seed, m, sc.threat, sc.camouflage, sc.warmUp
			r, err := Run(p)
			if err != nil {
				return "", err
			}
			if progress != nil {
				progress(r)
			}
			ratio := "–"
			if r.HonestShare > 0 {
				ratio = fmt.Sprintf("%.2f", r.Mass/r.HonestShare)
			}
			fmt.Fprintf(&b, "| %.0f %% | %.1f %% (%.1f %%) | %.1f %% (%.1f %%) | %.3f | %.3f | %.1f %% | %s | %.1f / %.1f |\n",
				100*m, 100*r.ToCollective, 100*r.Uniform, 100*r.Breached, 100*r.UniformBreached,
				r.Mass, r.Limit, 100*r.HonestShare, ratio, r.ColluderScore, r.HonestScore)
		}
	}
	return b.String(), nil
}
