package client

import (
	"encoding/json"

	"github.com/aspnode/asp/protocol"
)

// Message is a signed envelope as the API shows it (in "message" events and
// session transcripts), decoded to what an agent acts on. The node checked
// its signature before showing it.
type Message struct {
	MessageID      string `json:"messageId"`
	SessionID      string `json:"sessionId"`
	SequenceNumber uint64 `json:"sequenceNumber"`
	Timestamp      string `json:"timestamp"`
	// Sender and Recipient are agent ids.
	Sender       string `json:"sender"`
	Recipient    string `json:"recipient"`
	Performative string `json:"performative"`
	// Body is the performative's body: for PROPOSE and COUNTER
	// {"terms":{...}}, for ACCEPT and REJECT {"referenceId",...}.
	Body json.RawMessage `json:"body"`
}

// TimeLayout is the layout of times in terms (deliverBy): UTC with
// milliseconds, as protocol.TimeLayout.
const TimeLayout = protocol.TimeLayout

// Terms are an offer's terms. Decimals (quantity, unit price) are strings,
// compared exactly (math/big.Rat, not float64).
type Terms struct {
	Resource   string            `json:"resource"`
	Quantity   string            `json:"quantity"`
	Unit       string            `json:"unit"`
	UnitPrice  string            `json:"unitPrice"`
	Currency   string            `json:"currency"`
	DeliverBy  string            `json:"deliverBy,omitempty"` // RFC 3339, UTC
	Penalty    string            `json:"penalty,omitempty"`
	Arbiter    string            `json:"arbiter,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// Terms returns the terms of a PROPOSE or COUNTER.
func (m Message) Terms() (Terms, bool) {
	var b struct {
		Terms *Terms `json:"terms"`
	}
	if json.Unmarshal(m.Body, &b) != nil || b.Terms == nil {
		return Terms{}, false
	}
	return *b.Terms, true
}

// ReferenceID returns the message a reply refers to (the offer accepted,
// rejected or countered), if any.
func (m Message) ReferenceID() string {
	var b struct {
		ReferenceID string `json:"referenceId"`
	}
	_ = json.Unmarshal(m.Body, &b)
	return b.ReferenceID
}
