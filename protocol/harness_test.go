package protocol

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

var t0 = time.Date(2027, 2, 1, 9, 0, 0, 0, time.UTC)

// sentinels names every sentinel for test output.
var sentinels = []struct {
	err  error
	name string
}{
	{ErrDuplicate, "ErrDuplicate"}, {ErrReplay, "ErrReplay"}, {ErrChainMismatch, "ErrChainMismatch"},
	{ErrBadSignature, "ErrBadSignature"}, {ErrBadHash, "ErrBadHash"}, {ErrMissingSignature, "ErrMissingSignature"},
	{ErrDuplicateSignature, "ErrDuplicateSignature"}, {ErrCertificateExpired, "ErrCertificateExpired"},
	{ErrBadCertificate, "ErrBadCertificate"}, {ErrNotParty, "ErrNotParty"}, {ErrNotArbiter, "ErrNotArbiter"},
	{ErrReceiptOrg, "ErrReceiptOrg"}, {ErrUnreceipted, "ErrUnreceipted"}, {ErrNotFresh, "ErrNotFresh"}, {ErrTimeout, "ErrTimeout"},
	{ErrStaleOffer, "ErrStaleOffer"}, {ErrEscalated, "ErrEscalated"}, {ErrPolicyViolation, "ErrPolicyViolation"},
	{ErrOwnOffer, "ErrOwnOffer"}, {ErrAlreadyAccepted, "ErrAlreadyAccepted"}, {ErrSessionClosed, "ErrSessionClosed"},
	{ErrInvalidTransition, "ErrInvalidTransition"}, {ErrCommitmentState, "ErrCommitmentState"},
	{ErrFloat, "ErrFloat"}, {ErrBadDecimal, "ErrBadDecimal"}, {ErrNonCanonical, "ErrNonCanonical"},
	{ErrTooLarge, "ErrTooLarge"}, {ErrBadKey, "ErrBadKey"}, {ErrBadAgentID, "ErrBadAgentID"},
	{ErrBadPeerID, "ErrBadPeerID"}, {ErrVersion, "ErrVersion"}, {ErrWrongSession, "ErrWrongSession"},
	{ErrBadReference, "ErrBadReference"}, {ErrSequenceGap, "ErrSequenceGap"},
	{ErrTimeRegressed, "ErrTimeRegressed"}, {ErrWrongCommitment, "ErrWrongCommitment"},
	{ErrMalformed, "ErrMalformed"},
}

func errName(err error) string {
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			return s.name
		}
	}
	return "unknown(" + err.Error() + ")"
}

func describeErr(err error) string {
	return fmt.Sprintf("error %s %s", ErrorCode(err), errName(err))
}

// snapshot captures everything observable about a session.
type snapshot struct {
	state       State
	head        [32]byte
	n           int
	open        string
	offers      string
	commitments int
	seq         [2]uint64
	last        time.Time
	resume      State
}

func snap(s *Session) snapshot {
	var offers []string
	for _, id := range s.offerOrder {
		offers = append(offers, id+"="+string(s.offers[id].status))
	}
	return snapshot{s.state, s.head, len(s.transcript), s.open, strings.Join(offers, ","), len(s.commitments),
		s.seq, s.lastTime, s.resume}
}

type harness struct {
	t       testing.TB
	cfg     Config
	parties map[string]Party
	certs   map[string]*Certificate
	s       *Session
	rnd     io.Reader
	now     time.Time
}

var harnessKeys = sync.OnceValues(func() (map[string]Party, map[string]*Certificate) {
	parties, certs := map[string]Party{}, map[string]*Certificate{}
	for _, n := range []string{"buyer", "vendor", "mallory", "arbiter"} {
		p := FixtureParty(n, n)
		parties[n] = p
		c, err := p.Certificate([]string{"trade"}, t0.AddDate(1, 0, 0))
		if err != nil {
			panic(err)
		}
		certs[n] = c
	}
	return parties, certs
})

func newHarness(t testing.TB) *harness {
	parties, certs := harnessKeys()
	return &harness{t: t, parties: parties, certs: certs, rnd: FixtureRand("harness")}
}

func (h *harness) agent(name string) AgentID { return h.parties[name].Agent() }

func (h *harness) name(agent string) string {
	for n, p := range h.parties {
		if p.Agent().String() == agent {
			return n
		}
	}
	return agent
}

// ref turns "#N" into the N-th envelope's messageId.
func (h *harness) ref(v string) string {
	if strings.HasPrefix(v, "#") {
		n, err := strconv.Atoi(v[1:])
		if err != nil || n < 1 || n > h.s.Len() {
			h.t.Fatalf("bad ref %q", v)
		}
		return h.s.transcript[n-1].MessageID
	}
	if strings.HasPrefix(v, "C") {
		n, err := strconv.Atoi(v[1:])
		if err != nil || n < 1 || n > len(h.s.commitments) {
			h.t.Fatalf("bad commitment ref %q", v)
		}
		return h.s.commitments[n-1].ID
	}
	return v
}

func (h *harness) idx(id string) string {
	if i, ok := h.s.byID[id]; ok {
		return fmt.Sprintf("#%d", i+1)
	}
	return id
}

func dur(v string) time.Duration {
	d, err := time.ParseDuration(strings.TrimPrefix(v, "+"))
	if err != nil {
		panic(err)
	}
	return d
}

func (h *harness) body(p Performative, args map[string]string) Body {
	terms := func() *Terms {
		var t Terms
		set := false
		for k, dst := range map[string]*string{"resource": &t.Resource, "qty": &t.Quantity, "unit": &t.Unit,
			"price": &t.UnitPrice, "currency": &t.Currency, "arbiter": &t.Arbiter} {
			if v, ok := args[k]; ok {
				if k == "arbiter" {
					v = h.agent(v).String()
				}
				*dst, set = v, true
			}
		}
		if v, ok := args["deliver"]; ok {
			t.DeliverBy, set = t0.Add(dur(v)), true
		}
		if !set {
			return nil
		}
		return &t
	}
	var valid time.Time
	if v, ok := args["valid"]; ok {
		valid = t0.Add(dur(v))
	}
	ref := ""
	if v, ok := args["ref"]; ok {
		ref = h.ref(v)
	}
	amends := ""
	if v, ok := args["amends"]; ok {
		amends = h.ref(v)
	}
	switch p {
	case Propose:
		b := &ProposeBody{Type: args["type"], Terms: terms(), ValidUntil: valid, Amends: amends}
		if _, ok := h.s.latestTerms(); !ok && b.Type == "" && h.s.State() != StateIdle {
			base := Terms{Resource: "gpu-hours", Quantity: "1000", Unit: "hour", UnitPrice: "2.40", Currency: "USD"}
			if b.Terms != nil {
				base = base.With(*b.Terms)
			}
			b.Terms = &base
		}
		return b
	case Counter:
		b := &CounterBody{ReferenceID: ref, ValidUntil: valid, Amends: amends}
		if t := terms(); t != nil {
			b.Terms = *t
		}
		return b
	case Commit:
		b := &CommitBody{ReferenceID: ref, ValidUntil: valid, Amends: amends}
		if t := terms(); t != nil {
			b.Terms = *t
		}
		if v, ok := args["obliged"]; ok {
			b.Obligations = []Obligation{{Party: h.agent(v).String(), Action: "deliver", Verification: "usage-report"}}
		}
		return b
	case Accept:
		b := &AcceptBody{ReferenceID: ref}
		if args["hash"] == "bad" {
			b.ReferenceHash = make([]byte, 32)
		}
		return b
	case Reject:
		return &RejectBody{ReferenceID: ref, Code: args["code"], Reason: args["reason"]}
	case Withdraw:
		return &WithdrawBody{ReferenceID: ref}
	case Query:
		return &QueryBody{Question: "when?"}
	case Clarify:
		return &ClarifyBody{ReferenceID: ref, Text: "soon"}
	case Inform:
		return &InformBody{InformType: args["inform"], Text: "fyi"}
	case Delegate:
		return &DelegateBody{Delegate: h.agent(args["delegate"]).String(), Scope: "delivery"}
	case Escalate:
		return &EscalateBody{Reason: "price dispute", Severity: "high"}
	case Observe:
		return &ObserveBody{Subject: "market price"}
	case Close:
		return &CloseBody{Reason: args["reason"], Outcome: "completed"}
	}
	h.t.Fatalf("no body for %s", p)
	return nil
}

// build makes an envelope like Prepare, without the legality check, so
// Step's own refusal can be exercised.
func (h *harness) build(sender AgentID, p Performative, body Body, ts time.Time) *Envelope {
	s := h.s
	si := s.party(sender.String())
	b, err := s.fillBody(p, body, ts)
	if err != nil {
		h.t.Fatal(err)
	}
	id, err := NewMessageID(ts, h.rnd)
	if err != nil {
		h.t.Fatal(err)
	}
	env := &Envelope{Version: Version, MessageID: id, SessionID: s.id, Timestamp: ts, Performative: p, Body: b}
	if si >= 0 {
		env.SequenceNumber = s.seq[si] + 1
		env.Sender, env.Recipient = s.names[si], s.names[1-si]
	} else {
		env.SequenceNumber = 1
		env.Sender, env.Recipient = sender.String(), s.names[1]
	}
	env.Integrity.PreviousHash = s.head
	return env
}

func (h *harness) describe(eff Effects) string {
	var b strings.Builder
	if e := eff.Envelope; e != nil {
		fmt.Fprintf(&b, "ok #%d %s %s→%s: %s→%s", h.s.byID[e.MessageID]+1, e.Performative, h.name(e.Sender),
			h.name(e.Recipient), eff.From, eff.To)
	} else {
		fmt.Fprintf(&b, "tick: %s→%s", eff.From, eff.To)
	}
	if len(eff.Offers) > 0 {
		var o []string
		for _, c := range eff.Offers {
			o = append(o, h.idx(c.ID)+" "+string(c.Status))
		}
		fmt.Fprintf(&b, " offers[%s]", strings.Join(o, ", "))
	}
	if eff.Reason != "" {
		fmt.Fprintf(&b, " (%s)", eff.Reason)
	}
	if c := eff.Commitment; c != nil {
		i := slices.Index(h.s.commitments, c) + 1
		fmt.Fprintf(&b, "\ncommitment C%d %s: %s %s %s at %s %s, %s ← %s", i, c.State, c.Terms.Quantity, c.Terms.Unit,
			c.Terms.Resource, c.Terms.UnitPrice, c.Terms.Currency, h.name(c.Proposer), h.name(c.Acceptor))
		if c.Amends != "" {
			fmt.Fprintf(&b, ", amends C%d", slices.IndexFunc(h.s.commitments, func(x *Commitment) bool { return x.ID == c.Amends })+1)
		}
	}
	return b.String()
}

func (h *harness) step(env *Envelope, now time.Time) string {
	before := snap(h.s)
	eff, err := h.s.Step(env, now)
	if err != nil {
		if after := snap(h.s); after != before {
			h.t.Fatalf("refused step changed the session:\n%+v\n%+v", before, after)
		}
		return describeErr(err)
	}
	return h.describe(eff)
}

func (h *harness) run(d *datadriven.TestData) string {
	args := map[string]string{}
	var pos []string
	for _, a := range d.CmdArgs {
		if len(a.Vals) > 0 {
			args[a.Key] = a.Vals[0]
		} else {
			pos = append(pos, a.Key)
		}
	}
	advance := func() time.Time {
		if v, ok := args["at"]; ok {
			h.now = t0.Add(dur(v))
		} else {
			h.now = h.now.Add(time.Second)
		}
		return h.now
	}
	switch d.Cmd {
	case "session":
		if v, ok := args["invite-timeout"]; ok {
			h.cfg.InviteTimeout = dur(v)
		}
		h.now = t0
		h.s = NewSession(h.cfg, "sess-1", h.agent("buyer"), h.agent("vendor"), t0)
		return string(h.s.State())

	case "send", "force":
		who, perf := pos[0], Performative(pos[1])
		now := advance()
		sender := h.agent(who)
		body := h.body(perf, args)
		var env *Envelope
		if d.Cmd == "send" {
			var err error
			env, err = h.s.Prepare(sender, perf, body, now, h.rnd)
			if err != nil {
				return "prepare: " + describeErr(err)
			}
		} else {
			ts := now
			if v, ok := args["ts"]; ok {
				ts = now.Add(dur(v))
			}
			env = h.build(sender, perf, body, ts)
		}
		key, cert := h.parties[who].AgentKey, h.certs[who]
		switch args["cert"] {
		case "":
		case "expired":
			c, err := h.parties[who].Certificate(nil, t0.Add(time.Millisecond))
			if err != nil {
				h.t.Fatal(err)
			}
			cert = c
		case "forged": // signed by mallory's organisation for who's agent id
			c, err := h.parties[who].Certificate(nil, t0.AddDate(1, 0, 0))
			if err != nil {
				h.t.Fatal(err)
			}
			d, _ := c.Digest()
			c.Signature, _ = signDigest(h.parties["mallory"].OrgKey, domainCertificate, d)
			cert = c
		default:
			cert = h.certs[args["cert"]]
			key = h.parties[args["cert"]].AgentKey
		}
		if v, ok := args["seq"]; ok {
			n, _ := strconv.Atoi(v)
			env.SequenceNumber = uint64(int(env.SequenceNumber) + n)
		}
		if args["prev"] == "bad" {
			env.Integrity.PreviousHash[0] ^= 1
		}
		if args["session"] == "other" {
			env.SessionID = "sess-2"
		}
		if args["version"] != "" {
			env.Version = args["version"]
		}
		if err := env.Seal(key, cert); err != nil {
			return "seal: " + describeErr(err)
		}
		switch args["mutate"] {
		case "":
		case "badsig":
			env.Integrity.Signature[5] ^= 1
		case "badhash":
			env.Integrity.Hash[5] ^= 1
		case "body": // changed after signing
			if b, ok := env.Body.(*ProposeBody); ok && b.Terms != nil {
				t := *b.Terms
				t.UnitPrice = "0.01"
				b.Terms = &t
			} else {
				env.Body = &InformBody{Text: "changed"}
				env.Performative = Inform
			}
		default:
			h.t.Fatalf("unknown mutate %q", args["mutate"])
		}
		stepNow := now
		if v, ok := args["now"]; ok {
			stepNow = t0.Add(dur(v))
		}
		return h.step(env, stepNow)

	case "resend":
		n, _ := strconv.Atoi(strings.TrimPrefix(pos[0], "#"))
		env := h.s.transcript[n-1]
		now := advance()
		if args["mutate"] == "reuse-id" {
			// Same messageId and sequence, other content, properly signed.
			cp := *env
			cp.Body = &InformBody{Text: "same id, other content"}
			cp.Performative = Inform
			who := h.name(env.Sender)
			if err := cp.Seal(h.parties[who].AgentKey, h.certs[who]); err != nil {
				h.t.Fatal(err)
			}
			env = &cp
		}
		return h.step(env, now)

	case "tick":
		h.now = t0.Add(dur(pos[0]))
		before := h.s.State()
		eff := h.s.Tick(h.now)
		if !eff.Changed() && before == h.s.State() {
			return "tick: no change (" + string(before) + ")"
		}
		return h.describe(eff)

	case "state":
		var b strings.Builder
		fmt.Fprintf(&b, "state %s, %d messages", h.s.State(), h.s.Len())
		if h.s.Reason() != "" {
			fmt.Fprintf(&b, ", reason %q", h.s.Reason())
		}
		if e, ok := h.s.OpenOffer(); ok {
			t, _ := h.s.OpenTerms()
			fmt.Fprintf(&b, "\nopen offer %s by %s at %s", h.idx(e.MessageID), h.name(e.Sender), t.UnitPrice)
		}
		for _, id := range h.s.offerOrder {
			fmt.Fprintf(&b, "\noffer %s %s", h.idx(id), h.s.offers[id].status)
		}
		for i, c := range h.s.commitments {
			fmt.Fprintf(&b, "\ncommitment C%d at %s %s", i+1, c.Terms.UnitPrice, c.State)
		}
		fmt.Fprintf(&b, "\nnext seq buyer %d vendor %d", h.s.NextSequence(h.agent("buyer")), h.s.NextSequence(h.agent("vendor")))
		return b.String()

	case "replay":
		r, err := Replay(h.cfg, h.s.Transcript(), time.Time{})
		if err != nil {
			return "replay: " + describeErr(err)
		}
		if r.Head() != h.s.Head() || snap(r) != snap(h.s) {
			h.t.Fatalf("replay differs:\n%+v\n%+v", snap(r), snap(h.s))
		}
		return fmt.Sprintf("replay ok: %s, %d messages, %d commitments", r.State(), r.Len(), len(r.Commitments()))
	}
	h.t.Fatalf("unknown command %q", d.Cmd)
	return ""
}

func TestSessionScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata/session", func(t *testing.T, path string) {
		h := newHarness(t)
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			h.t = t
			out := h.run(d)
			debugf("%s %s\n", d.Pos, out)
			return out
		})
	})
}

func debugf(format string, args ...any) {
	if os.Getenv("ASP_DEBUG") != "" {
		fmt.Fprintf(os.Stderr, format, args...)
	}
}
