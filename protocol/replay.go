package protocol

import (
	"fmt"
	"time"
)

// Replay recomputes a session from its transcript: it creates the session
// from the first envelope (which must be the invitation) and steps every
// envelope at its own timestamp, so every signature, certificate, chain
// link, sequence number and move is checked exactly as the live nodes
// checked it. If now is not zero the result is then ticked to now (an
// invitation left unanswered fails, an open offer past validUntil
// expires). The first refusal is returned as a *ReplayError.
func Replay(cfg Config, transcript []*Envelope, now time.Time) (*Session, error) {
	if len(transcript) == 0 {
		return nil, &ReplayError{Index: 0, Err: fmt.Errorf("%w: empty transcript", ErrMalformed)}
	}
	first := transcript[0]
	if first == nil {
		return nil, &ReplayError{Index: 0, Err: fmt.Errorf("%w: nil envelope", ErrMalformed)}
	}
	s, _, err := SessionFromInvitation(cfg, first, first.Timestamp)
	if err != nil {
		return nil, &ReplayError{Index: 0, MessageID: first.MessageID, Err: err}
	}
	for i, e := range transcript[1:] {
		if e == nil {
			return nil, &ReplayError{Index: i + 1, Err: fmt.Errorf("%w: nil envelope", ErrMalformed)}
		}
		if _, err := s.Step(e, e.Timestamp); err != nil {
			return nil, &ReplayError{Index: i + 1, MessageID: e.MessageID, Err: err}
		}
	}
	if !now.IsZero() {
		s.Tick(now)
	}
	return s, nil
}

// ReplayEncoded decodes each canonical CBOR envelope and replays them.
func ReplayEncoded(cfg Config, transcript [][]byte, now time.Time) (*Session, error) {
	envs := make([]*Envelope, 0, len(transcript))
	for i, b := range transcript {
		e, err := DecodeEnvelope(b)
		if err != nil {
			return nil, &ReplayError{Index: i, Err: err}
		}
		envs = append(envs, e)
	}
	return Replay(cfg, envs, now)
}
