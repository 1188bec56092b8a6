package protocol

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// model is a naive reference of the session rules, written as plainly as
// possible, against which random walks compare Session.
type model struct {
	timeout     time.Duration
	state       State
	resume      State
	invID       string
	invitedAt   time.Time
	offers      []*mOffer
	open        *mOffer
	commitments int
}

type mOffer struct {
	id         string
	by         int
	validUntil time.Time
	status     OfferStatus
}

func (m *model) settled() State {
	if m.commitments > 0 {
		return StateExecuting
	}
	return StateConversing
}

func (m *model) find(id string) *mOffer {
	for _, o := range m.offers {
		if o.id == id {
			return o
		}
	}
	return nil
}

// move is one abstract move; ok reports whether the model accepts it.
type move struct {
	by         int
	perf       Performative
	ref        string
	resume     bool
	validUntil time.Time
	id         string
	ts         time.Time
}

func (m *model) apply(mv move) bool {
	// Work on a deep copy; keep it only if the move is legal.
	n := *m
	n.offers = nil
	for _, o := range m.offers {
		c := *o
		n.offers = append(n.offers, &c)
		if m.open == o {
			n.open = n.offers[len(n.offers)-1]
		}
	}
	if n.state == StateInvited && mv.ts.Sub(n.invitedAt) > n.timeout {
		n.state = StateFailed
	}
	if n.open != nil && !n.open.validUntil.IsZero() && mv.ts.After(n.open.validUntil) {
		n.open.status = OfferExpired
		n.open = nil
		if n.state == StateAgreeing {
			n.state = n.settled()
		}
		if n.state == StateEscalated && n.resume == StateAgreeing {
			n.resume = n.settled()
		}
	}
	ok := n.decide(mv)
	if !ok {
		return false
	}
	*m = n
	return true
}

// decide applies mv to n (a copy) and reports legality.
func (n *model) decide(mv move) bool {
	offerAnswer := func() *mOffer {
		ref := mv.ref
		if ref == "" {
			return n.open
		}
		if n.open != nil && n.open.id == ref {
			return n.open
		}
		return nil
	}
	newOffer := func() bool {
		if !mv.validUntil.IsZero() && !mv.validUntil.After(mv.ts) {
			return false
		}
		if n.open != nil {
			n.open.status = OfferSuperseded
		}
		o := &mOffer{id: mv.id, by: mv.by, validUntil: mv.validUntil, status: OfferOpen}
		n.offers = append(n.offers, o)
		n.open = o
		n.state = StateAgreeing
		return true
	}
	switch n.state {
	case StateClosed, StateFailed:
		return false
	case StateIdle:
		if mv.perf == Propose && mv.ref == "invite" && mv.by == 0 {
			n.state, n.invID, n.invitedAt = StateInvited, mv.id, mv.ts
			return true
		}
		return false
	case StateInvited:
		refOK := mv.ref == "" || mv.ref == n.invID
		switch {
		case mv.perf == Accept && mv.by == 1 && refOK:
			n.state = StateIntroduced
		case mv.perf == Reject && mv.by == 1 && refOK:
			n.state = StateFailed
		case mv.perf == Withdraw && mv.by == 0 && refOK:
			n.state = StateFailed
		case mv.perf == Close:
			n.state = StateClosed
		default:
			return false
		}
		return true
	case StateEscalated:
		switch mv.perf {
		case Inform:
			if mv.resume {
				n.state, n.resume = n.resume, ""
			}
		case Query, Clarify, Observe:
		case Close:
			if n.open != nil {
				n.open.status = OfferClosed
				n.open = nil
			}
			n.state = StateClosed
		default:
			return false
		}
		return true
	}
	switch mv.perf {
	case Propose:
		if mv.ref == "invite" {
			return false
		}
		return newOffer()
	case Commit:
		return newOffer()
	case Counter, Accept, Reject:
		o := offerAnswer()
		if o == nil || o.by == mv.by {
			return false
		}
		switch mv.perf {
		case Counter:
			o.status = OfferCountered
			n.open = nil
			return newOffer()
		case Accept:
			o.status = OfferAccepted
			n.commitments++
			n.open = nil
			n.state = StateExecuting
		case Reject:
			o.status = OfferRejected
			n.open = nil
			n.state = n.settled()
		}
		return true
	case Withdraw:
		o := offerAnswer()
		if o == nil || o.by != mv.by {
			return false
		}
		o.status = OfferWithdrawn
		n.open = nil
		n.state = n.settled()
		return true
	case Inform, Query, Clarify, Observe, Delegate:
		if mv.perf == Inform && mv.resume {
			return false
		}
		if n.state == StateIntroduced {
			n.state = StateConversing
		}
		return true
	case Escalate:
		n.resume = n.state
		if n.resume == StateIntroduced {
			n.resume = StateConversing
		}
		n.state = StateEscalated
		return true
	case Close:
		if n.open != nil {
			n.open.status = OfferClosed
			n.open = nil
		}
		n.state = StateClosed
		return true
	}
	return false
}

func TestQuickAgainstModel(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 2))
	runs, steps := 300, 40
	if testing.Short() {
		runs = 50
	}
	accepted := 0
	for run := 0; run < runs; run++ {
		h := newHarness(t)
		h.s = NewSession(Config{InviteTimeout: 10 * time.Second}, "quick", h.agent("buyer"), h.agent("vendor"), t0)
		m := &model{timeout: 10 * time.Second, state: StateIdle}
		now := t0
		names := []string{"buyer", "vendor"}
		for i := 0; i < steps; i++ {
			now = now.Add(time.Duration(r.IntN(8000)) * time.Millisecond)
			by := r.IntN(2)
			perf := Performatives[r.IntN(len(Performatives))]
			if perf == Close && r.IntN(10) > 0 {
				perf = Performatives[r.IntN(len(Performatives)-1)]
			}
			switch st := h.s.State(); {
			case st == StateIdle && r.IntN(4) > 0:
				perf, by = Propose, 0
			case st == StateInvited && r.IntN(3) > 0:
				perf, by = Accept, 1
			case st == StateEscalated && r.IntN(2) > 0:
				perf = Inform
			}
			mv := move{by: by, perf: perf, ts: now}
			var body Body
			terms := &Terms{Resource: "gpu-hours", Quantity: "1000", Unit: "hour",
				UnitPrice: fmt.Sprintf("2.%02d", r.IntN(100)), Currency: "USD"}
			if r.IntN(3) == 0 {
				mv.validUntil = now.Add(time.Duration(r.IntN(20000)-2000) * time.Millisecond).Truncate(time.Millisecond)
			}
			ref := ""
			if perf == Accept || perf == Reject || perf == Counter || perf == Withdraw {
				switch x := r.IntN(4); {
				case x == 0 && len(m.offers) > 0:
					ref = m.offers[r.IntN(len(m.offers))].id
				case x == 1 && m.invID != "":
					ref = m.invID
				}
			}
			switch perf {
			case Propose:
				if h.s.State() == StateIdle || r.IntN(8) == 0 {
					body = &ProposeBody{Type: InvitationType}
					mv.ref = "invite"
					mv.validUntil = time.Time{}
				} else {
					body = &ProposeBody{Type: OfferType, Terms: terms, ValidUntil: mv.validUntil}
				}
			case Commit:
				body = &CommitBody{Terms: *terms, ValidUntil: mv.validUntil}
			case Counter:
				body = &CounterBody{ReferenceID: ref, Terms: *terms, ValidUntil: mv.validUntil}
			case Accept:
				body = &AcceptBody{ReferenceID: ref}
			case Reject:
				body = &RejectBody{ReferenceID: ref}
			case Withdraw:
				body = &WithdrawBody{ReferenceID: ref}
			case Inform:
				mv.resume = r.IntN(2) == 0
				body = &InformBody{Text: "x"}
				if mv.resume {
					body = &InformBody{InformType: InformResume}
				}
			default:
				body = h.body(perf, map[string]string{"delegate": "arbiter"})
			}
			if perf != Propose && perf != Commit && perf != Counter {
				mv.validUntil = time.Time{}
			}
			env := h.build(h.agent(names[by]), perf, body, now)
			// fillBody resolved the default reference; the model sees the same.
			switch b := env.Body.(type) {
			case *AcceptBody:
				mv.ref = b.ReferenceID
			case *RejectBody:
				mv.ref = b.ReferenceID
			case *WithdrawBody:
				mv.ref = b.ReferenceID
			case *CounterBody:
				mv.ref = b.ReferenceID
			}
			mv.id = env.MessageID
			if err := env.Seal(h.parties[names[by]].AgentKey, h.certs[names[by]]); err != nil {
				t.Fatal(err)
			}
			before := snap(h.s)
			_, err := h.s.Step(env, now)
			want := m.apply(mv)
			if (err == nil) != want {
				t.Fatalf("seed %d run %d step %d: %s by %s ref=%q in %s: session err=%v, model ok=%v",
					seed, run, i, perf, names[by], mv.ref, before.state, err, want)
			}
			if err != nil {
				if snap(h.s) != before {
					t.Fatalf("seed %d: refused step changed the session", seed)
				}
				continue
			}
			accepted++
			if h.s.State() != m.state || len(h.s.commitments) != m.commitments {
				t.Fatalf("seed %d run %d step %d: %s by %s: session %s/%d, model %s/%d", seed, run, i, perf,
					names[by], h.s.State(), len(h.s.commitments), m.state, m.commitments)
			}
			for _, o := range m.offers {
				if st, _ := h.s.Offer(o.id); st != o.status {
					t.Fatalf("seed %d run %d step %d: offer status %s, model %s", seed, run, i, st, o.status)
				}
			}
		}
		// Tick agrees too, and replay reproduces the session.
		now = now.Add(time.Minute)
		h.s.Tick(now)
		m.apply(move{perf: "TICK", ts: now}) // never legal: applies time only in the copy
		if h.s.Len() > 0 {
			rs, err := Replay(h.s.Config(), h.s.Transcript(), now)
			if err != nil {
				t.Fatalf("seed %d: replay: %v", seed, err)
			}
			if snap(rs) != snap(h.s) {
				t.Fatalf("seed %d: replay differs", seed)
			}
			if !slices.Equal(rs.Transcript(), h.s.Transcript()) {
				t.Fatal("replay transcript")
			}
		}
	}
	t.Logf("%d moves accepted", accepted)
}
