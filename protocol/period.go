package protocol

import (
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// Periods (terms.payWithin) are written as a restricted ISO 8601
// duration in one canonical form, so that a decoded period re-encodes to
// the same bytes: "P" [days "D"] ["T" [hours "H"] [minutes "M"]
// [seconds "S"]], each number a positive integer without leading zeros,
// hours under 24, minutes and seconds under 60, absent parts left out.
// A day is exactly 86400 seconds (no calendar: no years, months or
// weeks, no fractions). Examples: "P30D", "PT36H" is refused (write
// "P1DT12H"), "PT90S" is refused (write "PT1M30S"). The zero period is
// the empty string; at most 36500 days.
// PeriodPattern is the regular expression a period (payWithin) matches
// (ParsePeriod refuses "P", "PT" and a trailing "T" besides).
const PeriodPattern = `^P(?:([1-9][0-9]{0,4})D)?(?:T(?:([1-9][0-9]?)H)?(?:([1-9][0-9]?)M)?(?:([1-9][0-9]?)S)?)?$`

var periodRE = regexp.MustCompile(PeriodPattern)

const maxPeriod = 36500 * 24 * time.Hour

// FormatPeriod returns the canonical form of d ("" for zero). d must be
// whole seconds, positive and at most 36500 days; other values give a
// string ParsePeriod refuses.
func FormatPeriod(d time.Duration) string {
	if d == 0 {
		return ""
	}
	if d < 0 || d > maxPeriod || d%time.Second != 0 {
		return fmt.Sprintf("invalid(%d)", int64(d))
	}
	s := int64(d / time.Second)
	days, s := s/86400, s%86400
	h, s := s/3600, s%3600
	m, s := s/60, s%60
	out := "P"
	if days > 0 {
		out += strconv.FormatInt(days, 10) + "D"
	}
	if h+m+s > 0 {
		out += "T"
		for _, p := range []struct {
			n int64
			u string
		}{{h, "H"}, {m, "M"}, {s, "S"}} {
			if p.n > 0 {
				out += strconv.FormatInt(p.n, 10) + p.u
			}
		}
	}
	return out
}

// ParsePeriod parses a period in its canonical form ("" is zero).
// Anything else returns an error wrapping ErrMalformed.
func ParsePeriod(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	m := periodRE.FindStringSubmatch(s)
	if m == nil || s == "P" || s == "PT" || s[len(s)-1] == 'T' {
		return 0, fmt.Errorf("%w: period %q is not P[nD][T[nH][nM][nS]]", ErrMalformed, s)
	}
	var d time.Duration
	for i, unit := range []time.Duration{24 * time.Hour, time.Hour, time.Minute, time.Second} {
		if m[i+1] != "" {
			n, _ := strconv.Atoi(m[i+1])
			d += time.Duration(n) * unit
		}
	}
	if d > maxPeriod || FormatPeriod(d) != s {
		return 0, fmt.Errorf("%w: period %q is not in canonical form (%s)", ErrMalformed, s, FormatPeriod(d))
	}
	return d, nil
}
