package protocol

import (
	"fmt"
	"math/big"
	"regexp"
	"time"
)

// PenaltyRule is a penalty written in terms, parsed. The grammar (exact,
// single spaces, nothing else):
//
//	<decimal>% per (hour|day|week) late        e.g. "5% per day late", "2% per week late"
//	<decimal> <CUR> per (hour|day|week) late   e.g. "50.00 USD per day late"
//	<decimal> <CUR>                            e.g. "100.00 USD": owed once when late at all
//
// A percentage is of the terms' total (quantity × unit price) and, in
// all, never more than the total. Each period started counts as a whole
// one ("per day or part of a day"): a delivery one minute late owes one
// day. Amounts are exact decimals (no floating point).
type PenaltyRule struct {
	Percent  string        // percentage per period, or ""
	Amount   string        // fixed amount (per period if Per > 0), or ""
	Currency string        // currency of Amount
	Per      time.Duration // period (hour, day, week), 0 for a one-off amount
}

var (
	penaltyPctRE   = regexp.MustCompile(`^([0-9.]+)% per (hour|day|week) late$`)
	penaltyFixedRE = regexp.MustCompile(`^([0-9.]+) ([A-Z][A-Z0-9]{2,7})(?: per (hour|day|week) late)?$`)
	penaltyPeriods = map[string]time.Duration{"hour": time.Hour, "day": 24 * time.Hour, "week": 7 * 24 * time.Hour}
)

// ParsePenaltyRule parses the terms' penalty text. Anything outside the
// grammar returns an error wrapping ErrBadPenalty.
func ParsePenaltyRule(s string) (PenaltyRule, error) {
	if m := penaltyPctRE.FindStringSubmatch(s); m != nil {
		if err := ValidDecimal(m[1]); err != nil {
			return PenaltyRule{}, fmt.Errorf("%w: %q: %v", ErrBadPenalty, s, err)
		}
		return PenaltyRule{Percent: m[1], Per: penaltyPeriods[m[2]]}, nil
	}
	if m := penaltyFixedRE.FindStringSubmatch(s); m != nil {
		if err := ValidDecimal(m[1]); err != nil {
			return PenaltyRule{}, fmt.Errorf("%w: %q: %v", ErrBadPenalty, s, err)
		}
		return PenaltyRule{Amount: m[1], Currency: m[2], Per: penaltyPeriods[m[3]]}, nil
	}
	return PenaltyRule{}, fmt.Errorf("%w: %q is not \"N%% per day late\" or \"N CUR [per day late]\"", ErrBadPenalty, s)
}

// Owed returns the amount owed under the rule for a lateness, and its
// currency: zero lateness owes "0". total is the terms' total in
// currency (for percentages). The amount has at least total's (or the
// fixed amount's) fraction digits and as many more as needed to be exact,
// up to 18 (then rounded half away from zero).
func (r PenaltyRule) Owed(total, currency string, lateness time.Duration) (string, string, error) {
	var base *big.Rat
	var digits int
	cur := currency
	switch {
	case r.Percent != "":
		t, err := decimalRat(total)
		if err != nil {
			return "", "", fmt.Errorf("%w: total: %v", ErrBadPenalty, err)
		}
		p, err := decimalRat(r.Percent)
		if err != nil {
			return "", "", fmt.Errorf("%w: %v", ErrBadPenalty, err)
		}
		base = new(big.Rat).Mul(t, p)
		base.Quo(base, big.NewRat(100, 1))
		digits = fracDigits(total)
	case r.Amount != "":
		a, err := decimalRat(r.Amount)
		if err != nil {
			return "", "", fmt.Errorf("%w: %v", ErrBadPenalty, err)
		}
		base, digits, cur = a, fracDigits(r.Amount), r.Currency
	default:
		return "", "", fmt.Errorf("%w: empty rule", ErrBadPenalty)
	}
	if lateness <= 0 {
		return "0", cur, nil
	}
	n := int64(1)
	if r.Per > 0 {
		n = int64((lateness + r.Per - 1) / r.Per)
	}
	owed := new(big.Rat).Mul(base, new(big.Rat).SetInt64(n))
	if r.Percent != "" {
		if t, _ := decimalRat(total); owed.Cmp(t) > 0 {
			owed = t
		}
	}
	for digits < 18 && !exactAt(owed, digits) {
		digits++
	}
	out := owed.FloatString(digits)
	if err := ValidDecimal(out); err != nil {
		return "", "", fmt.Errorf("%w: %v", ErrBadPenalty, err)
	}
	return out, cur, nil
}

// exactAt reports whether r has at most digits fraction digits.
func exactAt(r *big.Rat, digits int) bool {
	x := new(big.Rat).Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(digits)), nil)))
	return x.IsInt()
}
