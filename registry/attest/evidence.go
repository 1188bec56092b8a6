package attest

import (
	"fmt"

	"github.com/aspnode/asp/protocol"
	"github.com/aspnode/asp/registry/trust"
)

// Evidence returns what the trust model takes from a verified
// attestation: the parties, the commitment, the outcome, the time and the
// commitment's value (quantity × unit price, from c's terms; empty if c is
// nil or the product cannot be formed). c is the commitment the
// attestation's evidence forms, as Delivery.Commitment holds it.
//
// Precondition: a verified (trust.Model.Add trusts its caller on that).
func Evidence(a *Attestation, c *protocol.Commitment) (trust.Evidence, error) {
	o, err := trust.ParseOutcome(string(a.Outcome))
	if err != nil {
		return trust.Evidence{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	e := trust.Evidence{
		Attester:     a.Attester,
		Subject:      a.Subject,
		CommitmentID: a.CommitmentID,
		Outcome:      o,
		Time:         a.Time,
	}
	if c != nil && c.ID == a.CommitmentID {
		if v, err := protocol.MulDecimal(c.Terms.Quantity, c.Terms.UnitPrice); err == nil {
			e.Value = v
		}
	}
	return e, nil
}

// Evidence is Evidence(d.Attestation, d.Commitment).
func (d Delivery) Evidence() (trust.Evidence, error) { return Evidence(d.Attestation, d.Commitment) }
