package trust

import (
	"fmt"
	"time"
)

// Day is 24 hours; durations in this package are counted in it.
const Day = 24 * time.Hour

// Config holds the model's constants. The zero value of any field means its
// default (DefaultConfig); New rejects values out of range.
type Config struct {
	// PreTrusted lists organisations (peer ids) the observer trusts a priori:
	// they share the pre-trust vector with the observer's own direct
	// counterparties. Default: none.
	PreTrusted []string

	// HalfLife is the age at which a piece of evidence counts half
	// (exponential forgetting of the Beta evidence and of local trust).
	// Default 90 days.
	HalfLife time.Duration
	// PenaltyHalfLife is the half-life of the breach penalty (the sharp drop).
	// Default 180 days.
	PenaltyHalfLife time.Duration
	// IdleGrace is how long an agent may stay without new evidence before its
	// score starts to decay towards neutral. Default 30 days.
	IdleGrace time.Duration
	// IdleHalfLife is the half-life of that decay after IdleGrace.
	// Default 180 days.
	IdleHalfLife time.Duration
	// MaxClockSkew is how far in the future (relative to the time given to
	// Compute) evidence may be dated and still count, as if dated now.
	// Evidence dated later counts only once its time has come. Default 5 minutes.
	MaxClockSkew time.Duration

	// Damping is EigenTrust's restart probability α: at every step a share α
	// of the trust mass returns to the pre-trust vector. It bounds what a
	// collective K can capture: mass(K) ≤ ((1-α)·inflow(K) + p(K)) / α, so
	// a collective nobody pre-trusts holds at most (1-α)/α (0.43 at the
	// default) of the trust the others route into it per step. Higher values
	// keep trust closer to the observer's anchors. Must be in (0, 1).
	// Default 0.7.
	Damping float64
	// AnchorShare is the share of the pre-trust vector given to the
	// observer's own direct counterparties (the rest goes to PreTrusted);
	// when one side is empty the other takes all. In (0, 1]. Default 0.5.
	AnchorShare float64
	// EndorsementUnit scales attester weight. An organisation's trust mass is
	// spread over all the evidence it attests: its credibility is
	// ρ_j = t_j / U_j per unit of (aged, value-weighted) evidence, and its
	// weight w_j = min(MaxWeight, ρ_j / (EndorsementUnit·ρ̄)) where ρ̄ is the
	// anchors' pre-trust-weighted mean credibility. At 1 a typical anchor's
	// evidence counts like the observer's own. In (0, 100]. Default 1.
	EndorsementUnit float64
	// MaxIterations bounds the power iteration. Default 100.
	MaxIterations int
	// Tolerance ends the power iteration when the L1 change of the trust
	// vector falls below it. Default 1e-12.
	Tolerance float64

	// PairCap bounds how much one organisation's evidence about one agent
	// can say: at most PairCap (aged) positive units in the fulfilment
	// estimate and PairCap completed commitments in the volume. Default 25.
	PairCap int
	// VolumeSaturation is the weighted completed count at which the volume
	// component reaches 1 (it grows as log(1+n)/log(1+VolumeSaturation)).
	// Default 100.
	VolumeSaturation int
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		HalfLife:         90 * Day,
		PenaltyHalfLife:  180 * Day,
		IdleGrace:        30 * Day,
		IdleHalfLife:     180 * Day,
		MaxClockSkew:     5 * time.Minute,
		Damping:          0.7,
		AnchorShare:      0.5,
		EndorsementUnit:  1,
		MaxIterations:    100,
		Tolerance:        1e-12,
		PairCap:          25,
		VolumeSaturation: 100,
	}
}

// withDefaults fills zero fields and checks ranges.
func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	setDur := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	setDur(&c.HalfLife, d.HalfLife)
	setDur(&c.PenaltyHalfLife, d.PenaltyHalfLife)
	setDur(&c.IdleGrace, d.IdleGrace)
	setDur(&c.IdleHalfLife, d.IdleHalfLife)
	setDur(&c.MaxClockSkew, d.MaxClockSkew)
	if c.Damping == 0 {
		c.Damping = d.Damping
	}
	if c.AnchorShare == 0 {
		c.AnchorShare = d.AnchorShare
	}
	if c.EndorsementUnit == 0 {
		c.EndorsementUnit = d.EndorsementUnit
	}
	if c.MaxIterations == 0 {
		c.MaxIterations = d.MaxIterations
	}
	if c.Tolerance == 0 {
		c.Tolerance = d.Tolerance
	}
	if c.PairCap == 0 {
		c.PairCap = d.PairCap
	}
	if c.VolumeSaturation == 0 {
		c.VolumeSaturation = d.VolumeSaturation
	}
	switch {
	case c.HalfLife < 0 || c.PenaltyHalfLife < 0 || c.IdleGrace < 0 || c.IdleHalfLife < 0 || c.MaxClockSkew < 0:
		return c, fmt.Errorf("trust: negative duration in config")
	case !(c.Damping > 0 && c.Damping < 1):
		return c, fmt.Errorf("trust: Damping %v not in (0, 1)", c.Damping)
	case !(c.AnchorShare > 0 && c.AnchorShare <= 1):
		return c, fmt.Errorf("trust: AnchorShare %v not in (0, 1]", c.AnchorShare)
	case !(c.EndorsementUnit > 0 && c.EndorsementUnit <= 100):
		return c, fmt.Errorf("trust: EndorsementUnit %v not in (0, 100]", c.EndorsementUnit)
	case c.MaxIterations < 1 || c.MaxIterations > 10000:
		return c, fmt.Errorf("trust: MaxIterations %d not in [1, 10000]", c.MaxIterations)
	case !(c.Tolerance > 0 && c.Tolerance < 1):
		return c, fmt.Errorf("trust: Tolerance %v not in (0, 1)", c.Tolerance)
	case c.PairCap < 1 || c.PairCap > 1_000_000:
		return c, fmt.Errorf("trust: PairCap %d not in [1, 1e6]", c.PairCap)
	case c.VolumeSaturation < 1 || c.VolumeSaturation > 1_000_000_000:
		return c, fmt.Errorf("trust: VolumeSaturation %d not in [1, 1e9]", c.VolumeSaturation)
	}
	c.PreTrusted = append([]string(nil), c.PreTrusted...)
	return c, nil
}
