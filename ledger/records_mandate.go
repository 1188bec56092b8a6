package ledger

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/aspnode/asp/protocol"
)

// KindMandate records the mandate an organisation set for one of its
// agents: what the agent may commit the organisation to (node/mandate.go).
// Body: Mandate. The record is the organisation's own decision, unsigned
// beyond the ledger's checkpoints: it says which limits were in force from
// its time on, so that every move can be checked against them later.
const KindMandate Kind = 37

// Mandate is the body of a KindMandate record: the agent and its mandate
// as the node's API states it (JSON; empty: no mandate, the agent may sign
// anything). Encoding: a CBOR map {1: agent id, 2: mandate JSON}.
type Mandate struct {
	Agent   string `cbor:"1,keyasint"`
	Mandate []byte `cbor:"2,keyasint,omitempty"`
}

// EncodeMandate returns the body of a KindMandate record.
func EncodeMandate(m Mandate) []byte { return encodeRecord(m) }

// DecodeMandate reads the body of a KindMandate record: a valid agent id
// and, if set, a JSON object.
func DecodeMandate(b []byte) (Mandate, error) {
	var m Mandate
	if err := decodeRecord("mandate", b, &m); err != nil {
		return Mandate{}, err
	}
	if _, err := protocol.ParseAgentID(m.Agent); err != nil {
		return Mandate{}, fmt.Errorf("mandate: %w", err)
	}
	if len(m.Mandate) > 0 {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(m.Mandate, &obj); err != nil {
			return Mandate{}, fmt.Errorf("%w: mandate is not a JSON object: %v", protocol.ErrMalformed, err)
		}
	}
	return m, nil
}

// MandateRecord is a KindMandate record.
func MandateRecord(t time.Time, m Mandate) Record {
	return Record{Kind: KindMandate, Time: t, Body: EncodeMandate(m)}
}
