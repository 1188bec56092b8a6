package protocol

import (
	"encoding/json"
	"fmt"
)

type wireProposeBody struct {
	Type       string     `cbor:"type" json:"type"`
	Subject    string     `cbor:"subject,omitempty" json:"subject,omitempty"`
	Terms      *wireTerms `cbor:"terms,omitempty" json:"terms,omitempty"`
	Schemas    []string   `cbor:"schemas,omitempty" json:"schemas,omitempty"`
	ValidUntil string     `cbor:"validUntil,omitempty" json:"validUntil,omitempty"`
	Amends     string     `cbor:"amends,omitempty" json:"amends,omitempty"`
}

type wireCounterBody struct {
	ReferenceID string    `cbor:"referenceId,omitempty" json:"referenceId,omitempty"`
	Subject     string    `cbor:"subject,omitempty" json:"subject,omitempty"`
	Terms       wireTerms `cbor:"terms" json:"terms"`
	ValidUntil  string    `cbor:"validUntil,omitempty" json:"validUntil,omitempty"`
	Amends      string    `cbor:"amends,omitempty" json:"amends,omitempty"`
}

type wireAcceptBody struct {
	ReferenceID   string `cbor:"referenceId,omitempty" json:"referenceId,omitempty"`
	ReferenceHash b64    `cbor:"referenceHash,omitempty" json:"referenceHash,omitempty"`
}

type wireRejectBody struct {
	ReferenceID string `cbor:"referenceId,omitempty" json:"referenceId,omitempty"`
	Code        string `cbor:"code,omitempty" json:"code,omitempty"`
	Reason      string `cbor:"reason,omitempty" json:"reason,omitempty"`
}

type wireWithdrawBody struct {
	ReferenceID string `cbor:"referenceId,omitempty" json:"referenceId,omitempty"`
	Reason      string `cbor:"reason,omitempty" json:"reason,omitempty"`
}

type wireQueryBody struct {
	Question string   `cbor:"question" json:"question"`
	Fields   []string `cbor:"fields,omitempty" json:"fields,omitempty"`
}

type wireClarifyBody struct {
	ReferenceID string `cbor:"referenceId,omitempty" json:"referenceId,omitempty"`
	Text        string `cbor:"text" json:"text"`
}

type wireInformBody struct {
	InformType string            `cbor:"informType,omitempty" json:"informType,omitempty"`
	Text       string            `cbor:"text,omitempty" json:"text,omitempty"`
	Data       map[string]string `cbor:"data,omitempty" json:"data,omitempty"`
}

type wireObligation struct {
	Party        string `cbor:"party" json:"party"`
	Action       string `cbor:"action" json:"action"`
	Deadline     string `cbor:"deadline,omitempty" json:"deadline,omitempty"`
	Verification string `cbor:"verification,omitempty" json:"verification,omitempty"`
}

type wirePenalty struct {
	Condition string `cbor:"condition" json:"condition"`
	Amount    string `cbor:"amount" json:"amount"`
	Currency  string `cbor:"currency" json:"currency"`
}

type wireEscrow struct {
	Amount   string `cbor:"amount" json:"amount"`
	Currency string `cbor:"currency" json:"currency"`
	Holder   string `cbor:"holder,omitempty" json:"holder,omitempty"`
	Release  string `cbor:"release,omitempty" json:"release,omitempty"`
}

type wireCommitBody struct {
	ReferenceID string           `cbor:"referenceId,omitempty" json:"referenceId,omitempty"`
	Terms       wireTerms        `cbor:"terms" json:"terms"`
	Obligations []wireObligation `cbor:"obligations,omitempty" json:"obligations,omitempty"`
	Penalties   []wirePenalty    `cbor:"penalties,omitempty" json:"penalties,omitempty"`
	Escrow      *wireEscrow      `cbor:"escrow,omitempty" json:"escrow,omitempty"`
	ValidUntil  string           `cbor:"validUntil,omitempty" json:"validUntil,omitempty"`
	Amends      string           `cbor:"amends,omitempty" json:"amends,omitempty"`
}

type wireDelegateBody struct {
	Delegate string `cbor:"delegate" json:"delegate"`
	Scope    string `cbor:"scope,omitempty" json:"scope,omitempty"`
	Reason   string `cbor:"reason,omitempty" json:"reason,omitempty"`
}

type wireEscalateBody struct {
	Reason   string `cbor:"reason" json:"reason"`
	Severity string `cbor:"severity,omitempty" json:"severity,omitempty"`
	To       string `cbor:"to,omitempty" json:"to,omitempty"`
}

type wireObserveBody struct {
	Subject string            `cbor:"subject" json:"subject"`
	Data    map[string]string `cbor:"data,omitempty" json:"data,omitempty"`
}

type wireCloseBody struct {
	Reason  string `cbor:"reason,omitempty" json:"reason,omitempty"`
	Outcome string `cbor:"outcome,omitempty" json:"outcome,omitempty"`
}

func (b *ProposeBody) wire() any {
	w := &wireProposeBody{Type: b.Type, Subject: b.Subject, Schemas: b.Schemas,
		ValidUntil: FormatTime(b.ValidUntil), Amends: b.Amends}
	if b.Terms != nil {
		t := b.Terms.wire()
		w.Terms = &t
	}
	return w
}

func (b *CounterBody) wire() any {
	return &wireCounterBody{b.ReferenceID, b.Subject, b.Terms.wire(), FormatTime(b.ValidUntil), b.Amends}
}
func (b *AcceptBody) wire() any   { return &wireAcceptBody{b.ReferenceID, b.ReferenceHash} }
func (b *RejectBody) wire() any   { return &wireRejectBody{b.ReferenceID, b.Code, b.Reason} }
func (b *WithdrawBody) wire() any { return &wireWithdrawBody{b.ReferenceID, b.Reason} }
func (b *QueryBody) wire() any    { return &wireQueryBody{b.Question, b.Fields} }
func (b *ClarifyBody) wire() any  { return &wireClarifyBody{b.ReferenceID, b.Text} }
func (b *InformBody) wire() any   { return &wireInformBody{b.InformType, b.Text, b.Data} }
func (b *DelegateBody) wire() any { return &wireDelegateBody{b.Delegate, b.Scope, b.Reason} }
func (b *EscalateBody) wire() any { return &wireEscalateBody{b.Reason, b.Severity, b.To} }
func (b *ObserveBody) wire() any  { return &wireObserveBody{b.Subject, b.Data} }
func (b *CloseBody) wire() any    { return &wireCloseBody{b.Reason, b.Outcome} }

func (b *CommitBody) wire() any {
	w := &wireCommitBody{ReferenceID: b.ReferenceID, Terms: b.Terms.wire(),
		ValidUntil: FormatTime(b.ValidUntil), Amends: b.Amends}
	for _, o := range b.Obligations {
		w.Obligations = append(w.Obligations, wireObligation{o.Party, o.Action, FormatTime(o.Deadline), o.Verification})
	}
	for _, p := range b.Penalties {
		w.Penalties = append(w.Penalties, wirePenalty(p))
	}
	if b.Escrow != nil {
		e := wireEscrow(*b.Escrow)
		w.Escrow = &e
	}
	return w
}

// newWireBody returns a pointer to an empty wire body for p.
func newWireBody(p Performative) (any, error) {
	switch p {
	case Propose:
		return &wireProposeBody{}, nil
	case Counter:
		return &wireCounterBody{}, nil
	case Accept:
		return &wireAcceptBody{}, nil
	case Reject:
		return &wireRejectBody{}, nil
	case Withdraw:
		return &wireWithdrawBody{}, nil
	case Query:
		return &wireQueryBody{}, nil
	case Clarify:
		return &wireClarifyBody{}, nil
	case Inform:
		return &wireInformBody{}, nil
	case Commit:
		return &wireCommitBody{}, nil
	case Delegate:
		return &wireDelegateBody{}, nil
	case Escalate:
		return &wireEscalateBody{}, nil
	case Observe:
		return &wireObserveBody{}, nil
	case Close:
		return &wireCloseBody{}, nil
	}
	return nil, fmt.Errorf("%w: unknown performative %q", ErrMalformed, p)
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

func nilIfEmptyMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

// bodyFromWire converts a decoded wire body into its Body.
func bodyFromWire(w any) (Body, error) {
	switch w := w.(type) {
	case *wireProposeBody:
		vu, err := ParseTime(w.ValidUntil)
		if err != nil {
			return nil, fmt.Errorf("validUntil: %w", err)
		}
		b := &ProposeBody{Type: w.Type, Subject: w.Subject, Schemas: nilIfEmpty(w.Schemas), ValidUntil: vu, Amends: w.Amends}
		if w.Terms != nil {
			t, err := w.Terms.terms()
			if err != nil {
				return nil, err
			}
			b.Terms = &t
		}
		return b, nil
	case *wireCounterBody:
		vu, err := ParseTime(w.ValidUntil)
		if err != nil {
			return nil, fmt.Errorf("validUntil: %w", err)
		}
		t, err := w.Terms.terms()
		if err != nil {
			return nil, err
		}
		return &CounterBody{w.ReferenceID, w.Subject, t, vu, w.Amends}, nil
	case *wireAcceptBody:
		return &AcceptBody{w.ReferenceID, nilIfEmpty([]byte(w.ReferenceHash))}, nil
	case *wireRejectBody:
		return &RejectBody{w.ReferenceID, w.Code, w.Reason}, nil
	case *wireWithdrawBody:
		return &WithdrawBody{w.ReferenceID, w.Reason}, nil
	case *wireQueryBody:
		return &QueryBody{w.Question, nilIfEmpty(w.Fields)}, nil
	case *wireClarifyBody:
		return &ClarifyBody{w.ReferenceID, w.Text}, nil
	case *wireInformBody:
		return &InformBody{w.InformType, w.Text, nilIfEmptyMap(w.Data)}, nil
	case *wireCommitBody:
		vu, err := ParseTime(w.ValidUntil)
		if err != nil {
			return nil, fmt.Errorf("validUntil: %w", err)
		}
		t, err := w.Terms.terms()
		if err != nil {
			return nil, err
		}
		b := &CommitBody{ReferenceID: w.ReferenceID, Terms: t, ValidUntil: vu, Amends: w.Amends}
		for _, o := range w.Obligations {
			d, err := ParseTime(o.Deadline)
			if err != nil {
				return nil, fmt.Errorf("obligations.deadline: %w", err)
			}
			b.Obligations = append(b.Obligations, Obligation{o.Party, o.Action, d, o.Verification})
		}
		for _, p := range w.Penalties {
			b.Penalties = append(b.Penalties, Penalty(p))
		}
		if w.Escrow != nil {
			e := Escrow(*w.Escrow)
			b.Escrow = &e
		}
		return b, nil
	case *wireDelegateBody:
		return &DelegateBody{w.Delegate, w.Scope, w.Reason}, nil
	case *wireEscalateBody:
		return &EscalateBody{w.Reason, w.Severity, w.To}, nil
	case *wireObserveBody:
		return &ObserveBody{w.Subject, nilIfEmptyMap(w.Data)}, nil
	case *wireCloseBody:
		return &CloseBody{w.Reason, w.Outcome}, nil
	}
	panic(fmt.Sprintf("protocol: unknown wire body %T", w))
}

// checkBody verifies that b belongs to p and is well formed.
func checkBody(p Performative, b Body) error {
	if b == nil {
		return fmt.Errorf("%w: %s without a body", ErrMalformed, p)
	}
	if b.Performative() != p {
		return fmt.Errorf("%w: %T is not a %s body", ErrMalformed, b, p)
	}
	return b.Validate()
}

// EncodeBody returns the canonical CBOR encoding of a body.
func EncodeBody(b Body) ([]byte, error) { return canonical(b.wire()) }

// DecodeBody decodes the canonical CBOR body of performative p and
// validates it.
func DecodeBody(p Performative, raw []byte) (Body, error) {
	w, err := newWireBody(p)
	if err != nil {
		return nil, err
	}
	if err := decodeCanonical(raw, w); err != nil {
		return nil, fmt.Errorf("%s body: %w", p, err)
	}
	b, err := bodyFromWire(w)
	if err != nil {
		return nil, err
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	return b, nil
}

// MarshalBodyJSON returns the JSON form of a body (camelCase, decimals
// as strings, byte strings as unpadded base64url).
func MarshalBodyJSON(b Body) ([]byte, error) { return json.Marshal(b.wire()) }

// DecodeBodyJSON decodes the JSON body of performative p strictly: unknown
// fields are refused, a JSON number where a decimal string belongs returns
// an error wrapping ErrFloat, times must follow TimeLayout. It does not
// call Validate: a body from an agent may be partial (a COUNTER naming
// only a new unitPrice); Session.Prepare fills the defaults and validates.
func DecodeBodyJSON(p Performative, raw []byte) (Body, error) {
	w, err := newWireBody(p)
	if err != nil {
		return nil, err
	}
	if len(raw) == 0 {
		raw = []byte("{}")
	}
	if err := strictJSON(raw, w); err != nil {
		return nil, fmt.Errorf("%s body: %w", p, err)
	}
	return bodyFromWire(w)
}
