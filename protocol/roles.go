package protocol

import "fmt"

// CheckTermsRoles checks the roles the terms give between the two parties
// a and b (agent ids) of an offer: the provider, if named, is one of them,
// and the arbiter, if named, is an agent of a third organisation — neither
// a's nor b's. Session.Step refuses an offer (PROPOSE, COUNTER, COMMIT)
// whose terms fail it, so no such offer can be accepted, and
// RebuildCommitment refuses a commitment made of one.
//
// Why a third organisation: the arbiter alone can move a disputed
// commitment to BREACHED; an arbiter of a party's organisation is that
// party's own node, which could then rule against the other party alone.
//
// Why the accepted offer's terms are what both parties agreed to: an
// offer's signed envelope carries complete terms (Terms.Validate requires
// every field a deal needs), and the ACCEPT signs the offer's hash. Terms
// named only as a patch (a COUNTER naming just a price) are completed by
// the sender's Session.Prepare from the offer answered, so an arbiter
// carried over from an earlier offer is written in the counter's signed
// terms, seen by its signer, and signed again by the acceptor through the
// hash. A received COUNTER is never completed from earlier offers: what
// it does not carry, it does not contain.
func CheckTermsRoles(t Terms, a, b string) error {
	if t.Provider != "" && t.Provider != a && t.Provider != b {
		return fmt.Errorf("%w: provider %s is not a party", ErrBadReference, t.Provider)
	}
	if t.Arbiter == "" {
		return nil
	}
	arb, err := ParseAgentID(t.Arbiter)
	if err != nil {
		return fmt.Errorf("terms.arbiter: %w", err)
	}
	for _, p := range []string{a, b} {
		pa, err := ParseAgentID(p)
		if err != nil {
			return fmt.Errorf("party: %w", err)
		}
		if pa.Org == arb.Org {
			return fmt.Errorf("%w: arbiter %s belongs to the organisation of %s", ErrArbiterNotThirdParty, t.Arbiter, p)
		}
	}
	return nil
}
