package trust

import (
	"fmt"
)

// Outcome is what an attester says a subject did with one commitment.
//
// Positive outcomes (Fulfilled, DisputeWon) raise the subject's score and
// count as completed; negative ones (Breached, Expired, DisputeLost) lower it
// sharply; Cancelled (mutually agreed) is recorded but moves nothing.
type Outcome uint8

// The outcomes. The zero value is invalid.
const (
	// Fulfilled: the subject delivered what it committed to.
	Fulfilled Outcome = iota + 1
	// Breached: the subject broke the commitment.
	Breached
	// DisputeLost: a dispute about the commitment was ruled against the subject.
	DisputeLost
	// DisputeWon: a dispute was raised and ruled in the subject's favour.
	DisputeWon
	// Cancelled: both parties agreed (signed) to cancel.
	Cancelled
	// Expired: the deadline passed with nothing delivered. Until the dispute
	// engine rules on expired commitments it weighs like Breached.
	Expired

	numOutcomes = int(Expired) + 1
)

var outcomeNames = [numOutcomes]string{
	Fulfilled:   "fulfilled",
	Breached:    "breached",
	DisputeLost: "dispute_lost",
	DisputeWon:  "dispute_won",
	Cancelled:   "cancelled",
	Expired:     "expired",
}

// String returns the wire name ("fulfilled", "dispute_lost", ...).
func (o Outcome) String() string {
	if o.Valid() {
		return outcomeNames[o]
	}
	return fmt.Sprintf("Outcome(%d)", uint8(o))
}

// Valid reports whether o is one of the defined outcomes.
func (o Outcome) Valid() bool { return o >= Fulfilled && o <= Expired }

// Positive reports whether o counts for the subject (Fulfilled, DisputeWon).
func (o Outcome) Positive() bool { return o == Fulfilled || o == DisputeWon }

// Negative reports whether o counts against the subject (Breached, Expired,
// DisputeLost).
func (o Outcome) Negative() bool { return o == Breached || o == Expired || o == DisputeLost }

// ParseOutcome parses a wire name as returned by String. It also accepts the
// hyphenated and upper-case spellings ("dispute-lost", "BREACHED").
func ParseOutcome(s string) (Outcome, error) {
	for o := Fulfilled; o <= Expired; o++ {
		if equalFoldName(s, outcomeNames[o]) {
			return o, nil
		}
	}
	return 0, fmt.Errorf("%w: unknown outcome %q", ErrInvalid, s)
}

// equalFoldName compares ASCII case-insensitively, treating '-' as '_'.
func equalFoldName(s, name string) bool {
	if len(s) != len(name) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c == '-' {
			c = '_'
		}
		if c != name[i] {
			return false
		}
	}
	return true
}

// MarshalText encodes o as its wire name.
func (o Outcome) MarshalText() ([]byte, error) {
	if !o.Valid() {
		return nil, fmt.Errorf("%w: outcome %d", ErrInvalid, uint8(o))
	}
	return []byte(outcomeNames[o]), nil
}

// UnmarshalText decodes a wire name (see ParseOutcome).
func (o *Outcome) UnmarshalText(b []byte) error {
	v, err := ParseOutcome(string(b))
	if err != nil {
		return err
	}
	*o = v
	return nil
}

// severity orders outcomes for breaking ties between two items of one
// attester about one commitment with the same time: the more severe wins.
func (o Outcome) severity() int {
	switch o {
	case DisputeLost:
		return 6
	case Breached:
		return 5
	case Expired:
		return 4
	case DisputeWon:
		return 3
	case Fulfilled:
		return 2
	case Cancelled:
		return 1
	}
	return 0
}

// Level is a coarse trust grade, L0 (unknown or untrusted) to L4
// (established). See LevelFor for the thresholds.
type Level uint8

// The levels.
const (
	L0 Level = iota
	L1
	L2
	L3
	L4
)

// levelRule is the lowest score and completed count a level needs.
type levelRule struct {
	score     float64
	completed int
}

// levelRules[l] is what level l needs (L0 needs nothing).
var levelRules = [...]levelRule{
	L0: {0, 0},
	L1: {20, 1},
	L2: {40, 3},
	L3: {60, 10},
	L4: {80, 25},
}

// LevelFor returns the highest level whose thresholds score and completed
// both reach:
//
//	L1: score ≥ 20 and completed ≥ 1
//	L2: score ≥ 40 and completed ≥ 3
//	L3: score ≥ 60 and completed ≥ 10
//	L4: score ≥ 80 and completed ≥ 25
//
// and L0 otherwise (unknown agents: the neutral score is below L1).
func LevelFor(score float64, completed int) Level {
	for l := L4; l > L0; l-- {
		r := levelRules[l]
		if score >= r.score && completed >= r.completed {
			return l
		}
	}
	return L0
}

// MinScore returns the lowest score level l needs.
func (l Level) MinScore() float64 {
	if l > L4 {
		return 100
	}
	return levelRules[l].score
}

// String returns "L0" … "L4".
func (l Level) String() string { return fmt.Sprintf("L%d", uint8(l)) }

// MarshalText encodes l as "L0" … "L4".
func (l Level) MarshalText() ([]byte, error) {
	if l > L4 {
		return nil, fmt.Errorf("%w: level %d", ErrInvalid, uint8(l))
	}
	return []byte(l.String()), nil
}

// UnmarshalText decodes "L0" … "L4" (or "0" … "4").
func (l *Level) UnmarshalText(b []byte) error {
	v, err := ParseLevel(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// ParseLevel parses "L0" … "L4" (case-insensitive) or "0" … "4".
func ParseLevel(s string) (Level, error) {
	if len(s) == 2 && (s[0] == 'L' || s[0] == 'l') {
		s = s[1:]
	}
	if len(s) == 1 && s[0] >= '0' && s[0] <= '4' {
		return Level(s[0] - '0'), nil
	}
	return 0, fmt.Errorf("%w: unknown level %q", ErrInvalid, s)
}
