package registry

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	record "github.com/libp2p/go-libp2p-record"
)

// Namespace is the DHT record namespace of the registry: card keys read
// "/asp/card/<hex sha256 of agent id>". Register the Validator under it:
//
//	dht.New(h, dht.Mode(dht.ModeServer), dht.ProtocolPrefix("/asp"),
//		dht.Validator(record.NamespacedValidator{registry.Namespace: v}))
const Namespace = "asp"

// Validator is the DHT record validator of card records. It accepts a
// record only if it decodes canonically within MaxCardSize, is stored
// under its own agent's key, carries a valid organization signature and
// certificate, and has not expired; Select prefers the highest version.
// Refusals are counted in Metrics. It is safe for concurrent use.
type Validator struct {
	clock   func() time.Time
	metrics *Metrics
}

var _ record.Validator = (*Validator)(nil)

// NewValidator returns a Validator counting refusals in m (nil: not
// counted) and reading the time from clock (nil: time.Now).
func NewValidator(m *Metrics, clock func() time.Time) *Validator {
	if clock == nil {
		clock = time.Now
	}
	return &Validator{clock: clock, metrics: m}
}

// Metrics returns the metrics the validator counts in (may be nil).
func (v *Validator) Metrics() *Metrics { return v.metrics }

// Check decodes and verifies a card at the validator's time, counting a
// refusal. A valid tombstone (Withdrawn) passes.
func (v *Validator) Check(value []byte) (*Card, error) {
	c, err := DecodeCard(value)
	if err == nil {
		err = c.Verify(v.clock())
	}
	if err != nil {
		return nil, v.metrics.reject(err)
	}
	return c, nil
}

// CheckFrom is Check for a card presented by peer: the card must be one
// of peer's own (ErrReplayed otherwise).
func (v *Validator) CheckFrom(peerID string, value []byte) (*Card, error) {
	c, err := v.Check(value)
	if err != nil {
		return nil, err
	}
	if c.Org != peerID {
		return nil, v.metrics.reject(fmt.Errorf("%w: card of %s served by %s", ErrReplayed, c.AgentID, peerID))
	}
	return c, nil
}

// Validate implements record.Validator.
func (v *Validator) Validate(key string, value []byte) error {
	if !strings.HasPrefix(key, CardKeyPrefix) {
		return fmt.Errorf("registry: key %q is not a card key", key)
	}
	c, err := v.Check(value)
	if err != nil {
		return err
	}
	if c.Key() != key {
		return v.metrics.reject(fmt.Errorf("%w: card of %s stored under %s", ErrReplayed, c.AgentID, key))
	}
	return nil
}

// Select implements record.Validator: the highest version wins; between
// two different records of one version the bytewise greater wins, so
// every node picks the same one. Undecodable records never win.
func (v *Validator) Select(key string, values [][]byte) (int, error) {
	if len(values) == 0 {
		return 0, errors.New("registry: select among no values")
	}
	best, bestVer := -1, uint64(0)
	for i, b := range values {
		c, err := DecodeCard(b)
		if err != nil || c.Key() != key {
			continue
		}
		if best < 0 || c.Version > bestVer || (c.Version == bestVer && bytes.Compare(b, values[best]) > 0) {
			best, bestVer = i, c.Version
		}
	}
	if best < 0 {
		return 0, errors.New("registry: no decodable card among values")
	}
	return best, nil
}
