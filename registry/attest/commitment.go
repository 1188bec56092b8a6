package attest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"time"

	"github.com/aspnode/asp/protocol"
)

// decodeEvidence decodes the offer and the acceptance; it verifies
// nothing.
func decodeEvidence(offerBytes, accBytes []byte) (offer, acc *protocol.Envelope, err error) {
	if offer, err = protocol.DecodeEnvelope(offerBytes); err != nil {
		return nil, nil, fmt.Errorf("%w: offer: %w", ErrMalformed, err)
	}
	if acc, err = protocol.DecodeEnvelope(accBytes); err != nil {
		return nil, nil, fmt.Errorf("%w: acceptance: %w", ErrMalformed, err)
	}
	return offer, acc, nil
}

// rebuild derives the commitment that offer and acc form with
// protocol.RebuildCommitment, which verifies both envelopes (signatures,
// integrity hashes, certificates at their timestamps), checks that the
// ACCEPT names the offer and derives the commitment id
// (protocol.CommitmentID).
func rebuild(offer, acc *protocol.Envelope) (*protocol.Commitment, error) {
	c, err := protocol.RebuildCommitment(offer, acc, nil, nil, time.Time{})
	if err != nil {
		switch {
		case errors.Is(err, protocol.ErrBadReference):
			return nil, fmt.Errorf("%w: %w", ErrMismatch, err)
		default:
			return nil, classifyEnvelope("evidence", err)
		}
	}
	return c, nil
}

// counterparty returns the party of c that is not agent.
func counterparty(c *protocol.Commitment, agent string) string {
	if agent == c.Proposer {
		return c.Acceptor
	}
	return c.Proposer
}

// certificateOf returns the certificate that agent's envelope carries, or
// nil if agent sent neither.
func certificateOf(agent string, offer, acc *protocol.Envelope) *protocol.Certificate {
	switch agent {
	case offer.Sender:
		return offer.Certificate
	case acc.Sender:
		return acc.Certificate
	}
	return nil
}

// sameCertificate reports whether a and b are the same signed certificate.
func sameCertificate(a, b *protocol.Certificate) bool {
	return a != nil && b != nil && a.AgentID == b.AgentID && bytes.Equal(a.PublicKey, b.PublicKey) &&
		a.NotAfter.Equal(b.NotAfter) && slices.Equal(a.Capabilities, b.Capabilities) &&
		bytes.Equal(a.Signature, b.Signature)
}
