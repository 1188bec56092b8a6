package attest

import (
	"errors"
	"fmt"

	"time"

	"github.com/aspnode/asp/protocol"
)

// formCommitment decodes the evidence and derives the commitment it forms
// with protocol.RebuildCommitment, which verifies both envelopes
// (signatures, integrity hashes, certificates at their timestamps), checks
// that the ACCEPT names the offer and derives the commitment id
// (protocol.CommitmentID).
func formCommitment(offerBytes, accBytes []byte) (*protocol.Commitment, error) {
	offer, err := protocol.DecodeEnvelope(offerBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: offer: %w", ErrMalformed, err)
	}
	acc, err := protocol.DecodeEnvelope(accBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: acceptance: %w", ErrMalformed, err)
	}
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
