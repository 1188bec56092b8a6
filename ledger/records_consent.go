package ledger

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/aspnode/asp/protocol"
)

// KindConsent records the node's invitation policy as changed at run time
// (node/consent.go): the consent rule, the allow and deny lists of
// organisations, the minimum trust. Body: the policy as JSON (a JSON
// object). Like a mandate, it is the organisation's own decision: the
// record says from when it was in force.
const KindConsent Kind = 38

// ConsentRecord is a KindConsent record of the policy p (JSON).
func ConsentRecord(t time.Time, p []byte) Record {
	return Record{Kind: KindConsent, Time: t, Body: p}
}

// DecodeConsent checks the body of a KindConsent record: a JSON object.
func DecodeConsent(b []byte) (map[string]json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil || obj == nil {
		return nil, fmt.Errorf("%w: consent record is not a JSON object", protocol.ErrMalformed)
	}
	return obj, nil
}
