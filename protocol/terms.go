package protocol

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"strings"
	"time"
)

// Terms are the structured, floating-point-free content of an offer.
type Terms struct {
	Resource   string            // what is traded, e.g. "gpu-hours" (required)
	Quantity   string            // decimal, e.g. "1000" (required)
	Unit       string            // unit of Quantity, e.g. "hour" (required)
	UnitPrice  string            // decimal price per unit, e.g. "2.55" (required)
	Currency   string            // ISO 4217 code or token symbol: [A-Z][A-Z0-9]{2,7} (required)
	DeliverBy  time.Time         // deadline of delivery; zero for none
	Penalty    string            // free text, e.g. "5% per day late"
	Arbiter    string            // agent id of the arbiter of disputes, optional; of a third organisation
	Attributes map[string]string // free attributes, at most 64

	// Provider is the agent id of the party that delivers (and is paid);
	// the other party is the buyer. Optional: when empty, the acceptor of
	// the commitment is the provider (Commitment.Provider).
	Provider string
	// PayBy is the deadline of payment, owed by the buyer; zero for none.
	PayBy time.Time
	// PayWithin is the time the buyer has to pay, counted from the
	// commitment's acceptance (its Created time); zero for none. On the
	// wire it is a restricted ISO-8601 duration (FormatPeriod). At most
	// one of PayBy and PayWithin is set.
	PayWithin time.Duration
}

// CurrencyPattern is the regular expression a currency code matches.
const CurrencyPattern = `^[A-Z][A-Z0-9]{2,7}$`

var currencyRE = regexp.MustCompile(CurrencyPattern)

// Validate checks the terms' grammar: required fields present, decimals
// valid, quantity positive, currency well formed, arbiter a valid agent id.
func (t *Terms) Validate() error {
	if err := checkText("terms.resource", t.Resource, maxShort, true); err != nil {
		return err
	}
	if err := checkDecimal("terms.quantity", t.Quantity, true); err != nil {
		return err
	}
	if strings.Trim(t.Quantity, "0.") == "" {
		return fmt.Errorf("%w: terms.quantity must be positive", ErrBadDecimal)
	}
	if err := checkText("terms.unit", t.Unit, maxShort, true); err != nil {
		return err
	}
	if err := checkDecimal("terms.unitPrice", t.UnitPrice, true); err != nil {
		return err
	}
	if !currencyRE.MatchString(t.Currency) {
		return fmt.Errorf("%w: terms.currency %q", ErrMalformed, t.Currency)
	}
	if err := checkText("terms.penalty", t.Penalty, maxText, false); err != nil {
		return err
	}
	if err := checkAgent("terms.arbiter", t.Arbiter, false); err != nil {
		return err
	}
	if err := checkAgent("terms.provider", t.Provider, false); err != nil {
		return err
	}
	if !t.PayBy.IsZero() && t.PayWithin != 0 {
		return fmt.Errorf("%w: terms.payBy and terms.payWithin are exclusive", ErrMalformed)
	}
	if t.PayWithin != 0 {
		if _, err := ParsePeriod(FormatPeriod(t.PayWithin)); err != nil {
			return fmt.Errorf("terms.payWithin: %w", err)
		}
	}
	return checkMap("terms.attributes", t.Attributes)
}

// With returns t with every non-empty field of patch laid over it
// (attributes are merged key by key). It is how a counter-offer that names
// only a new price becomes complete terms.
func (t Terms) With(patch Terms) Terms {
	out := t
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&out.Resource, patch.Resource)
	set(&out.Quantity, patch.Quantity)
	set(&out.Unit, patch.Unit)
	set(&out.UnitPrice, patch.UnitPrice)
	set(&out.Currency, patch.Currency)
	set(&out.Penalty, patch.Penalty)
	set(&out.Arbiter, patch.Arbiter)
	set(&out.Provider, patch.Provider)
	if !patch.DeliverBy.IsZero() {
		out.DeliverBy = Millis(patch.DeliverBy)
	}
	// payBy and payWithin exclude each other: a patch setting one clears
	// the other.
	if !patch.PayBy.IsZero() {
		out.PayBy, out.PayWithin = Millis(patch.PayBy), 0
	}
	if patch.PayWithin != 0 {
		out.PayWithin, out.PayBy = patch.PayWithin, time.Time{}
	}
	if len(t.Attributes)+len(patch.Attributes) > 0 {
		out.Attributes = maps.Clone(t.Attributes)
		if out.Attributes == nil {
			out.Attributes = map[string]string{}
		}
		maps.Copy(out.Attributes, patch.Attributes)
	}
	return out
}

// Total returns quantity × unit price, exactly.
func (t *Terms) Total() (string, error) { return MulDecimal(t.Quantity, t.UnitPrice) }

type wireTerms struct {
	Resource   string            `cbor:"resource" json:"resource"`
	Quantity   string            `cbor:"quantity" json:"quantity"`
	Unit       string            `cbor:"unit" json:"unit"`
	UnitPrice  string            `cbor:"unitPrice" json:"unitPrice"`
	Currency   string            `cbor:"currency" json:"currency"`
	DeliverBy  string            `cbor:"deliverBy,omitempty" json:"deliverBy,omitempty"`
	Penalty    string            `cbor:"penalty,omitempty" json:"penalty,omitempty"`
	Arbiter    string            `cbor:"arbiter,omitempty" json:"arbiter,omitempty"`
	Attributes map[string]string `cbor:"attributes,omitempty" json:"attributes,omitempty"`
	// Added after asp/1.0's first vectors; absent when empty, so terms
	// without them encode exactly as before.
	Provider  string `cbor:"provider,omitempty" json:"provider,omitempty"`
	PayBy     string `cbor:"payBy,omitempty" json:"payBy,omitempty"`
	PayWithin string `cbor:"payWithin,omitempty" json:"payWithin,omitempty"`
}

func (t Terms) wire() wireTerms {
	return wireTerms{t.Resource, t.Quantity, t.Unit, t.UnitPrice, t.Currency, FormatTime(t.DeliverBy),
		t.Penalty, t.Arbiter, t.Attributes, t.Provider, FormatTime(t.PayBy), FormatPeriod(t.PayWithin)}
}

func (w wireTerms) terms() (Terms, error) {
	d, err := ParseTime(w.DeliverBy)
	if err != nil {
		return Terms{}, fmt.Errorf("terms.deliverBy: %w", err)
	}
	payBy, err := ParseTime(w.PayBy)
	if err != nil {
		return Terms{}, fmt.Errorf("terms.payBy: %w", err)
	}
	payWithin, err := ParsePeriod(w.PayWithin)
	if err != nil {
		return Terms{}, fmt.Errorf("terms.payWithin: %w", err)
	}
	attrs := w.Attributes
	if len(attrs) == 0 {
		attrs = nil
	}
	return Terms{w.Resource, w.Quantity, w.Unit, w.UnitPrice, w.Currency, d, w.Penalty, w.Arbiter, attrs,
		w.Provider, payBy, payWithin}, nil
}

// MarshalCBOR encodes the terms canonically.
func (t Terms) MarshalCBOR() ([]byte, error) { return canonical(t.wire()) }

// UnmarshalCBOR decodes terms.
func (t *Terms) UnmarshalCBOR(b []byte) error {
	var w wireTerms
	if err := decMode.Unmarshal(b, &w); err != nil {
		return classifyDecodeError(err)
	}
	x, err := w.terms()
	if err != nil {
		return err
	}
	*t = x
	return nil
}

// MarshalJSON encodes the terms in their JSON form (camelCase, decimals as
// strings, deliverBy in TimeLayout).
func (t Terms) MarshalJSON() ([]byte, error) { return json.Marshal(t.wire()) }

// UnmarshalJSON decodes terms strictly: unknown fields are refused and a
// JSON number where a decimal belongs returns ErrFloat.
func (t *Terms) UnmarshalJSON(b []byte) error {
	var w wireTerms
	if err := strictJSON(b, &w); err != nil {
		return err
	}
	x, err := w.terms()
	if err != nil {
		return err
	}
	*t = x
	return nil
}
