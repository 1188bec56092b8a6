package protocol

import (
	"fmt"
	"math/big"
	"regexp"
)

// Decimals are strings, never floating point: an optional integer part of
// at most 30 digits without leading zeros, and an optional fraction of 1 to
// 18 digits. No sign, exponent, spaces, or leading "+". Examples: "0",
// "1000", "2.40", "0.001".
// DecimalPattern is the regular expression every decimal amount matches:
// no sign, no exponent, at most 30 integer and 18 fraction digits.
const DecimalPattern = `^(0|[1-9][0-9]{0,29})(\.[0-9]{1,18})?$`

var decimalRE = regexp.MustCompile(DecimalPattern)

// ValidDecimal checks s against the decimal grammar. Errors wrap ErrBadDecimal.
func ValidDecimal(s string) error {
	if !decimalRE.MatchString(s) {
		return fmt.Errorf("%w: %q", ErrBadDecimal, s)
	}
	return nil
}

// CompareDecimal compares two valid decimals numerically ("2.40" == "2.4"):
// -1, 0 or +1. It returns an error wrapping ErrBadDecimal if either is invalid.
func CompareDecimal(a, b string) (int, error) {
	ra, err := decimalRat(a)
	if err != nil {
		return 0, err
	}
	rb, err := decimalRat(b)
	if err != nil {
		return 0, err
	}
	return ra.Cmp(rb), nil
}

func decimalRat(s string) (*big.Rat, error) {
	if err := ValidDecimal(s); err != nil {
		return nil, err
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrBadDecimal, s)
	}
	return r, nil
}

// MulDecimal returns a*b exactly, as a decimal string with the sum of the
// operands' fraction digits (e.g. "1000" × "2.55" = "2550.00").
func MulDecimal(a, b string) (string, error) {
	ra, err := decimalRat(a)
	if err != nil {
		return "", err
	}
	rb, err := decimalRat(b)
	if err != nil {
		return "", err
	}
	return new(big.Rat).Mul(ra, rb).FloatString(fracDigits(a) + fracDigits(b)), nil
}

// AddDecimal returns a+b exactly, as a decimal string with the larger of
// the operands' fraction digits (e.g. "2550.00" + "120.5" = "2670.50").
func AddDecimal(a, b string) (string, error) {
	ra, err := decimalRat(a)
	if err != nil {
		return "", err
	}
	rb, err := decimalRat(b)
	if err != nil {
		return "", err
	}
	return new(big.Rat).Add(ra, rb).FloatString(max(fracDigits(a), fracDigits(b))), nil
}

func fracDigits(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			return len(s) - i - 1
		}
	}
	return 0
}
