package trust

import (
	"math"
	"slices"
	"time"
)

// Outcome weights. A negative outcome counts negWeight[o] units against the
// subject in the Beta estimate and in local trust (one positive outcome
// counts 1), and multiplies the score by exp(-penalty[o]) while fresh (the
// sharp drop), both times the value weight ω and the attester weight.
var (
	negWeight = [numOutcomes]float64{Breached: 4, Expired: 4, DisputeLost: 6}
	penalty   = [numOutcomes]float64{Breached: 0.3, Expired: 0.3, DisputeLost: 0.5}
)

// NegativeWeight returns how many positive outcomes one o outweighs (0 for
// non-negative outcomes).
func NegativeWeight(o Outcome) float64 {
	if !o.Valid() {
		return 0
	}
	return negWeight[o]
}

// Penalty returns the exponent of the sharp drop a fresh o causes from a
// fully weighted attester: the score is multiplied by exp(-Penalty(o)·ω).
func Penalty(o Outcome) float64 {
	if !o.Valid() {
		return 0
	}
	return penalty[o]
}

const (
	// MaxWeight bounds the weight of one attesting organisation's evidence.
	MaxWeight = 8.0
	// VolumeFloor is the share of the fulfilment estimate an agent gets with
	// no completed volume: score = 100·F·(VolumeFloor + (1-VolumeFloor)·V)·B.
	VolumeFloor = 0.2
	// NeutralScore is the score of an agent with no evidence that counts
	// (unknown, or known only to attesters the observer gives no weight):
	// the Beta prior 1/2 times VolumeFloor, i.e. 10. It is below L1, so an
	// unknown agent passes no policy asking for L1, and an agent that resets
	// its identity starts again from here. Idle agents decay towards it.
	NeutralScore = 100 * 0.5 * VolumeFloor
)

// Fixed point: sums that run in arrival (id) order are kept in int64 units of
// 2^-32, which makes them exact and therefore independent of the order in
// which evidence arrived. A term below 2^-33 (evidence older than ~33 half
// lives) rounds to zero.
const fixOne = 1 << 32

func fix(x float64) int64      { return int64(x*fixOne + 0.5) }
func unfix(q int64) float64    { return float64(q) / fixOne }
func round2(x float64) float64 { return math.Round(x*100) / 100 }

// scratch is reused between computes.
type scratch struct {
	pairPos, pairNeg, pairPen, pairLast []int64
	pairAtt, pairLastPos                []int64
	pairNegC, pairPenC                  []int64 // contested share of pairNeg, pairPen
	pairContested                       []int32
	pairCnt                             [][numOutcomes]int32
	orgPos, orgNeg                      []int64
	sub                                 []subAcc
}

type subAcc struct {
	r, s, p, c, e, units, wsum int64
	last, lastPos              int64
	orgs, unendorsed, future   int32
	contested                  int32
	cnt                        [numOutcomes]int32
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}

// Compute scores every agent the model knows, as seen by observer (an
// organisation's peer id) at time now. The result depends only on the
// evidence set, the configuration, observer and now: not on the order in
// which evidence was added, and not on any clock.
//
// observer need not appear in the evidence. If it has no positive direct
// counterparties and Config.PreTrusted names no organisation that appears
// in the evidence, nothing anchors the trust graph: no attester but the
// observer's own agents has weight, and Snapshot.Anchored reports false.
func (m *Model) Compute(observer string, now time.Time) *Snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.canonicalLocked()
	cfg := &m.cfg
	sc := &m.scratch
	nowNs := now.UnixNano()
	nP, nO, nA := len(m.pairs), len(m.orgs), len(m.agents)

	sc.pairPos = grow(sc.pairPos, nP)
	sc.pairNeg = grow(sc.pairNeg, nP)
	sc.pairPen = grow(sc.pairPen, nP)
	sc.pairLast = grow(sc.pairLast, nP)
	sc.pairAtt = grow(sc.pairAtt, nP)
	sc.pairLastPos = grow(sc.pairLastPos, nP)
	sc.pairNegC = grow(sc.pairNegC, nP)
	sc.pairPenC = grow(sc.pairPenC, nP)
	sc.pairContested = grow(sc.pairContested, nP)
	sc.pairCnt = grow(sc.pairCnt, nP)
	sc.orgPos = grow(sc.orgPos, len(m.orgPairs))
	sc.orgNeg = grow(sc.orgNeg, len(m.orgPairs))
	sc.sub = grow(sc.sub, nA)

	// Pass 1: age every item and sum it into its pair and organisation pair.
	invH := 1 / float64(cfg.HalfLife)
	invHP := 1 / float64(cfg.PenaltyHalfLife)
	skew := int64(cfg.MaxClockSkew)
	for i := range m.items {
		it := &m.items[i]
		age := nowNs - it.t
		if age < -skew {
			sc.sub[it.sub].future++
			continue
		}
		age = max(age, 0)
		p := it.pair
		sc.pairCnt[p][it.out]++
		switch {
		case it.out.Positive():
			q := fix(it.omega * math.Exp2(-float64(age)*invH))
			sc.pairPos[p] += q
			sc.pairAtt[p] += q
			sc.orgPos[m.pairs[p].orgPair] += q
			sc.pairLastPos[p] = max(sc.pairLastPos[p], it.t)
		case it.out.Negative():
			x := it.omega * math.Exp2(-float64(age)*invH)
			sc.pairAtt[p] += fix(x)
			q := fix(negWeight[it.out] * x)
			qp := fix(penalty[it.out] * it.omega * math.Exp2(-float64(age)*invHP))
			sc.pairNeg[p] += q
			sc.orgNeg[m.pairs[p].orgPair] += q
			sc.pairPen[p] += qp
			if m.contested(it) {
				sc.pairNegC[p] += q
				sc.pairPenC[p] += qp
				sc.pairContested[p]++
			}
		default:
			continue
		}
		sc.pairLast[p] = max(sc.pairLast[p], it.t)
	}

	tr := m.eigenTrust(observer)

	// Credibility: an organisation's trust mass is spread over all the
	// evidence it attests, ρ_j = t_j / U_j per (aged, value-weighted) item.
	// Its weight is ρ_j relative to the anchors' as a whole,
	// ρ̄ = Σ_k p_k·t_k / Σ_k p_k·U_k.
	orgUnits := make([]int64, nO)
	for p, pr := range m.pairs {
		orgUnits[pr.attOrg] += sc.pairAtt[p]
	}
	weight := make([]float64, nO)
	refNum, refDen := 0.0, 0.0
	for _, k := range m.rankedOrgs {
		if tr.pre[k] > 0 {
			refNum += tr.pre[k] * tr.mass[k]
			refDen += tr.pre[k] * unfix(orgUnits[k])
		}
	}
	if refDen > 0 {
		ref := cfg.EndorsementUnit * refNum / refDen
		for j, t := range tr.mass {
			if t > 0 && orgUnits[j] > 0 {
				weight[j] = min(MaxWeight, t/unfix(orgUnits[j])/ref)
			}
		}
	}
	if tr.observer >= 0 {
		weight[tr.observer] = max(1, weight[tr.observer])
	}
	m.zeroEquivocatedWeightLocked(weight)

	// Pass 2: weigh each (attester org, subject) pair and sum per subject.
	capQ := int64(cfg.PairCap) * fixOne
	for p := range m.pairs {
		cnt := &sc.pairCnt[p]
		n := int32(0)
		for _, c := range cnt {
			n += c
		}
		if n == 0 {
			continue
		}
		pr := m.pairs[p]
		a := &sc.sub[pr.sub]
		units := sc.pairPos[p] + sc.pairNeg[p]
		a.units += units
		w := weight[pr.attOrg]
		if w == 0 {
			a.unendorsed += n
			continue
		}
		a.r += fix(w * unfix(min(sc.pairPos[p], capQ)))
		// A contested complaint (the accused attested the complainer on the
		// same commitment) counts (w_j / (w_j + w_accused))² of itself: a
		// quarter between equals, nearly all from a far more credible
		// complainer, nearly nothing from a far less credible one.
		d := w / (w + weight[m.agents[pr.sub].org])
		d *= d
		a.s += fix(w*unfix(sc.pairNeg[p]-sc.pairNegC[p])) + fix(w*d*unfix(sc.pairNegC[p]))
		a.p += fix(w*unfix(sc.pairPen[p]-sc.pairPenC[p])) + fix(w*d*unfix(sc.pairPenC[p]))
		a.contested += sc.pairContested[p]
		nPos := int(cnt[Fulfilled] + cnt[DisputeWon])
		a.c += fix(w * float64(min(nPos, cfg.PairCap)))
		a.e += fix(w * unfix(units))
		a.wsum += fix(w)
		if w > 0 {
			a.orgs++
		}
		for o := range cnt {
			a.cnt[o] += cnt[o]
		}
		a.last = max(a.last, sc.pairLast[p])
		a.lastPos = max(a.lastPos, sc.pairLastPos[p])
	}

	snap := &Snapshot{
		observer:   observer,
		now:        now,
		anchored:   tr.anchored,
		iterations: tr.iterations,
		residual:   tr.residual,
		agentNames: m.agentNames,
		orgNames:   m.orgNames,
		orgRank:    m.orgRank,
		rankedOrgs: m.rankedOrgs,
		damping:    cfg.Damping,
		tr:         tr,
		expl:       make([]Explanation, nA),
		mass:       make([]float64, nO),
		weight:     make([]float64, nO),
	}
	for r, id := range m.rankedOrgs {
		snap.mass[r] = tr.mass[id]
		snap.weight[r] = weight[id]
	}
	logSat := math.Log1p(float64(cfg.VolumeSaturation))
	for r, id := range m.rankedAgents {
		snap.expl[r] = m.explain(&sc.sub[id], &m.agents[id], nowNs, logSat)
	}
	m.condemnLocked(snap)
	return snap
}

// contested reports whether a negative item is answered by the accused: the
// subject attested the attester about the same commitment. A ruling
// (DisputeLost) is never contested.
func (m *Model) contested(it *item) bool {
	if it.out == DisputeLost {
		return false
	}
	k, ok := m.byKey[itemKey{att: it.sub, cmt: it.cmt}]
	return ok && m.items[k].sub == it.att
}

// explain turns one subject's sums into its score and explanation.
func (m *Model) explain(a *subAcc, rec *agentRec, nowNs int64, logSat float64) Explanation {
	cfg := &m.cfg
	R, S := unfix(a.r), unfix(a.s)
	F := (R + 1) / (R + S + 2)
	C := unfix(a.c)
	V := min(1, math.Log1p(C)/logSat)
	P := unfix(a.p)
	B := math.Exp(-P)
	raw := 100 * F * (VolumeFloor + (1-VolumeFloor)*V) * B
	// Idle decay pulls a good score towards neutral from the last completed
	// commitment on; a score below neutral recovers only as its evidence
	// ages (so idling never helps a breacher, and a breach never refreshes).
	Q := 1.0
	idleDays := 0.0
	if a.lastPos != 0 {
		idle := time.Duration(max(0, nowNs-a.lastPos))
		idleDays = float64(idle) / float64(Day)
		if idle > cfg.IdleGrace {
			Q = math.Exp2(-float64(idle-cfg.IdleGrace) / float64(cfg.IdleHalfLife))
		}
	}
	score := raw
	if raw > NeutralScore {
		score = NeutralScore + (raw-NeutralScore)*Q
	}
	score = round2(min(100, max(0, score)))
	var last time.Time
	if a.last != 0 {
		last = time.Unix(0, a.last).UTC()
	}
	completed := int(a.cnt[Fulfilled] + a.cnt[DisputeWon])
	nNeg := int(a.cnt[Breached] + a.cnt[Expired] + a.cnt[DisputeLost])
	counted := completed + nNeg + int(a.cnt[Cancelled])
	E := 0.0
	if a.units > 0 {
		E = min(1, float64(a.e)/float64(a.units))
	}
	return Explanation{
		AgentID:   rec.name,
		Score:     score,
		Level:     LevelFor(score, completed),
		Completed: completed,
		Known:     counted > 0 || a.unendorsed > 0 || a.future > 0,
		Components: Components{
			Fulfilment:   Component{Value: F, Evidence: completed + nNeg, Weight: R + S},
			Volume:       Component{Value: V, Evidence: completed, Weight: C},
			Recency:      Component{Value: Q, Evidence: completed, Weight: idleDays},
			DisputesLost: Component{Value: B, Evidence: nNeg, Weight: P},
			Endorsement:  Component{Value: E, Evidence: int(a.orgs), Weight: unfix(a.wsum)},
		},
		LastEvidence: last,
		Counts: Counts{
			Fulfilled:   int(a.cnt[Fulfilled]),
			Breached:    int(a.cnt[Breached]),
			DisputeLost: int(a.cnt[DisputeLost]),
			DisputeWon:  int(a.cnt[DisputeWon]),
			Cancelled:   int(a.cnt[Cancelled]),
			Expired:     int(a.cnt[Expired]),
			Contested:   int(a.contested),
		},
		Ignored: Ignored{
			Self:       int(rec.self),
			SameOrg:    int(rec.sameOrg),
			Unendorsed: int(a.unendorsed),
			Future:     int(a.future),
		},
	}
}

// trustResult is the personalised EigenTrust vector.
type trustResult struct {
	mass, pre  []float64 // by org id
	observer   int32     // org id, or -1
	anchored   bool
	iterations int
	residual   float64
	// The row-normalised local trust, rows by rank, columns by org id.
	start []int32
	cols  []int32
	vals  []float64
}

// eigenTrust runs the power iteration t ← (1-α)·(Cᵀt + d·p) + α·p, where C is
// the row-normalised local trust between organisations, d the mass of
// organisations that trust nobody, and p the pre-trust vector. Rows are
// visited in canonical (name) order so every floating-point sum runs in an
// order fixed by the evidence set alone. REQUIRES: m.mu, pass 1 done.
func (m *Model) eigenTrust(observer string) trustResult {
	cfg := &m.cfg
	sc := &m.scratch
	nO := len(m.orgs)
	res := trustResult{mass: make([]float64, nO), pre: make([]float64, nO), observer: -1}

	// Local trust s_ij = max(sat_ij - unsat_ij, 0), with unsat weighted by
	// outcome, both aged and value weighted, summed exactly.
	rowTot := make([]int64, nO)
	rowLen := make([]int32, nO+1) // by rank, then prefix offsets
	for op, e := range m.orgPairs {
		if v := sc.orgPos[op] - sc.orgNeg[op]; v > 0 {
			rowTot[e.from] += v
			rowLen[m.orgRank[e.from]+1]++
		}
	}
	for r := 1; r <= nO; r++ {
		rowLen[r] += rowLen[r-1]
	}
	start := rowLen
	cols := make([]int32, start[nO])
	vals := make([]float64, start[nO])
	fill := slices.Clone(start[:nO])
	for op, e := range m.orgPairs {
		if v := sc.orgPos[op] - sc.orgNeg[op]; v > 0 {
			r := m.orgRank[e.from]
			k := fill[r]
			fill[r]++
			cols[k] = e.to
			vals[k] = float64(v) / float64(rowTot[e.from])
		}
	}

	res.start, res.cols, res.vals = start, cols, vals

	// Pre-trust: the observer's normalised row and the pre-trusted orgs.
	p := res.pre
	obs, hasObs := m.orgIdx[observer]
	if hasObs {
		res.observer = obs
	}
	own := hasObs && rowTot[obs] > 0
	var pre []int32
	for _, name := range cfg.PreTrusted {
		if id, ok := m.orgIdx[name]; ok && !slices.Contains(pre, id) {
			pre = append(pre, id)
		}
	}
	ownShare, preShare := cfg.AnchorShare, 1-cfg.AnchorShare
	switch {
	case own && len(pre) == 0:
		ownShare, preShare = 1, 0
	case !own && len(pre) > 0:
		ownShare, preShare = 0, 1
	case !own && len(pre) == 0:
		return res
	}
	res.anchored = true
	if own {
		r := m.orgRank[obs]
		for k := start[r]; k < start[r+1]; k++ {
			p[cols[k]] = ownShare * vals[k]
		}
	}
	for _, id := range pre {
		p[id] += preShare / float64(len(pre))
	}

	alpha := cfg.Damping
	t := slices.Clone(p)
	next := make([]float64, nO)
	for res.iterations < cfg.MaxIterations {
		res.iterations++
		clear(next)
		dangling := 0.0
		for r, i := range m.rankedOrgs {
			ti := t[i]
			if ti == 0 {
				continue
			}
			if rowTot[i] == 0 {
				dangling += ti
				continue
			}
			for k := start[r]; k < start[r+1]; k++ {
				next[cols[k]] += ti * vals[k]
			}
		}
		delta := 0.0
		restart := alpha + (1-alpha)*dangling
		for _, j := range m.rankedOrgs {
			next[j] = (1-alpha)*next[j] + restart*p[j]
			delta += math.Abs(next[j] - t[j])
		}
		t, next = next, t
		res.residual = delta
		if delta < cfg.Tolerance {
			break
		}
	}
	res.mass = t
	return res
}
