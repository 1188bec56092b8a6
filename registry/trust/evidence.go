package trust

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Errors returned by Model.Add. Test with errors.Is; the returned error
// wraps one of them with the detail.
var (
	// ErrInvalid marks evidence that is malformed: an empty or badly formed
	// id, an org that does not match the agent id, an unknown outcome, a
	// zero time or a value that is not a non-negative decimal.
	ErrInvalid = errors.New("trust: invalid evidence")
	// ErrSelf marks evidence whose attester is its subject. It counts nothing.
	ErrSelf = errors.New("trust: attester is the subject")
	// ErrSameOrg marks evidence between two agents of one organisation:
	// self-dealing inside an organisation counts nothing.
	ErrSameOrg = errors.New("trust: attester and subject in the same organisation")
	// ErrDuplicate marks evidence that does not replace what the model holds
	// for its (attester, commitment): it is older, or it is the same.
	ErrDuplicate = errors.New("trust: duplicate evidence")
)

// AgentScheme prefixes every agent id: "agent://<org peer id>/<name>".
const AgentScheme = "agent://"

// Evidence is one attestation: Attester says that Subject's commitment
// CommitmentID ended with Outcome, at Time.
//
// Precondition: the model trusts the caller to feed only evidence it has
// verified: signed by Attester, who is a party of the commitment, which both
// parties signed, and with Subject the other party. The model checks the
// rest itself (see Model.Add): shape, one item per (attester, commitment),
// attester ≠ subject, and attester's organisation ≠ subject's organisation.
type Evidence struct {
	// Attester and Subject are agent ids, "agent://<org peer id>/<name>".
	Attester string `json:"attester"`
	Subject  string `json:"subject"`
	// AttesterOrg and SubjectOrg are the organisations' peer ids. They may
	// be left empty, in which case they are read from the agent ids; if
	// set, they must match them.
	AttesterOrg string `json:"attesterOrg,omitempty"`
	SubjectOrg  string `json:"subjectOrg,omitempty"`
	// CommitmentID is the id of the both-signed commitment ("cmt_…").
	CommitmentID string `json:"commitmentId"`
	// Outcome is what the subject did.
	Outcome Outcome `json:"outcome"`
	// Time is when the outcome was attested.
	Time time.Time `json:"time"`
	// Value is the commitment's value (quantity × unit price) as a decimal
	// string such as "2550.00", or empty if unknown. Larger commitments weigh
	// more, on a logarithmic scale capped at ValueWeightCap; the currency is
	// not considered.
	Value string `json:"value,omitempty"`
}

// SplitAgentID splits "agent://<org>/<name>" into its organisation and name.
// It checks the shape only (the caller has verified the peer id).
func SplitAgentID(id string) (org, name string, err error) {
	rest, ok := strings.CutPrefix(id, AgentScheme)
	if !ok {
		return "", "", fmt.Errorf("%w: agent id %q lacks %s", ErrInvalid, id, AgentScheme)
	}
	org, name, ok = strings.Cut(rest, "/")
	if !ok || org == "" || name == "" {
		return "", "", fmt.Errorf("%w: agent id %q is not agent://<org>/<name>", ErrInvalid, id)
	}
	return org, name, nil
}

// Value weighting: ω(v) = min(ValueWeightCap, 1 + log10(1 + v/ValueReference)).
const (
	// ValueReference is the value at which ω reaches 1 + log10(2) ≈ 1.3.
	ValueReference = 1000.0
	// ValueWeightCap bounds ω: no commitment weighs more than 3 plain ones.
	ValueWeightCap = 3.0
)

// valueWeight parses a decimal value and returns ω. An empty value weighs 1.
func valueWeight(v string) (float64, error) {
	if v == "" {
		return 1, nil
	}
	if len(v) > 64 {
		return 0, fmt.Errorf("%w: value too long", ErrInvalid)
	}
	dot := false
	digits := 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot && digits > 0 && i < len(v)-1:
			dot = true
		default:
			return 0, fmt.Errorf("%w: value %q is not a non-negative decimal", ErrInvalid, v)
		}
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return ValueWeightCap, nil // only overflow can fail here: a huge value
	}
	return min(ValueWeightCap, 1+math.Log10(1+f/ValueReference)), nil
}

// checked is validated evidence, ready to be interned.
type checked struct {
	attOrg, subOrg string
	omega          float64
}

// check validates e as Model.Add documents.
func check(e *Evidence) (checked, error) {
	var c checked
	attOrg, _, err := SplitAgentID(e.Attester)
	if err != nil {
		return c, fmt.Errorf("attester: %w", err)
	}
	subOrg, _, err := SplitAgentID(e.Subject)
	if err != nil {
		return c, fmt.Errorf("subject: %w", err)
	}
	if e.AttesterOrg != "" && e.AttesterOrg != attOrg {
		return c, fmt.Errorf("%w: attester org %q does not match %q", ErrInvalid, e.AttesterOrg, e.Attester)
	}
	if e.SubjectOrg != "" && e.SubjectOrg != subOrg {
		return c, fmt.Errorf("%w: subject org %q does not match %q", ErrInvalid, e.SubjectOrg, e.Subject)
	}
	if e.CommitmentID == "" {
		return c, fmt.Errorf("%w: empty commitment id", ErrInvalid)
	}
	if !e.Outcome.Valid() {
		return c, fmt.Errorf("%w: outcome %d", ErrInvalid, uint8(e.Outcome))
	}
	if e.Time.IsZero() {
		return c, fmt.Errorf("%w: zero time", ErrInvalid)
	}
	if y := e.Time.Year(); y < 1971 || y > 2200 {
		return c, fmt.Errorf("%w: time %v out of range", ErrInvalid, e.Time)
	}
	omega, err := valueWeight(e.Value)
	if err != nil {
		return c, err
	}
	c = checked{attOrg: attOrg, subOrg: subOrg, omega: omega}
	if e.Attester == e.Subject {
		return c, fmt.Errorf("%w: %s", ErrSelf, e.Attester)
	}
	if attOrg == subOrg {
		return c, fmt.Errorf("%w: %s", ErrSameOrg, attOrg)
	}
	return c, nil
}
