// Package trust turns attestations about commitments into explainable 0–100
// trust scores that only real, countersigned transactions can move.
//
// It is a pure model: no I/O, no goroutines, no clock reads (the time of a
// computation is an argument). The node feeds it evidence (Model.Add) and
// asks for the scores one observer sees at one time (Model.Compute); gossip,
// storage and the HTTP endpoint live elsewhere.
//
// # Model
//
// For a subject agent s, seen by observer organisation o at time now:
//
//   - Every item ages: it counts λ = 2^(-age/HalfLife), times a value
//     weight ω = min(3, 1+log10(1+value/1000)). Positive outcomes count 1,
//     negative ones NegativeWeight (4 for a breach or expiry, 6 for a lost
//     dispute).
//   - Per pair (attester organisation j, subject s) the sums form a Beta
//     reputation (r_js, s_js); r_js is capped at PairCap.
//   - Attester organisations are weighted by personalised EigenTrust over
//     the organisation graph (local trust max(r-s, 0), row-normalised),
//     damped towards a pre-trust vector made of o's own direct positive
//     counterparties and the configured pre-trusted organisations. An
//     organisation's mass t_j is spread over all the evidence it attests
//     (U_j units): its weight is w_j = min(MaxWeight, (t_j/U_j)/ρ̄), with
//     ρ̄ = Σ p_k·t_k / Σ p_k·U_k over the anchors; the observer's own weight
//     is at least 1.
//   - A breach or expiry the accused answered (it attested the complainer
//     about the same commitment) counts (w_j/(w_j+w_accused))² of itself; a
//     lost dispute is a ruling and always counts fully.
//   - R = Σ_j w_j·min(r_js, PairCap), S = Σ_j w_j·s_js, fulfilment
//     F = (R+1)/(R+S+2); volume V = log(1+C)/log(1+VolumeSaturation) with C
//     the weighted completed count; breach factor B = exp(-Σ w·penalty·ω·λ');
//     idle decay Q after IdleGrace since the last completed commitment.
//   - raw = 100·F·(0.2+0.8·V)·B; score = NeutralScore + (raw-NeutralScore)·Q
//     when raw is above NeutralScore, else raw; and a level L0–L4 from the
//     score and the completed count (LevelFor).
//
// docs/trust.md gives every formula and constant, and the simulation of
// colluding organisations that backs the design.
//
// # Precondition
//
// The model does not verify signatures. The caller feeds only evidence it
// has verified: signed by the attester, a party of a commitment that both
// parties signed, the subject being the other party.
//
// # Invariants
//
//   - One item per (attester, commitment); the latest wins (Model.Add).
//   - An attester never rates itself, nor an agent of its own organisation.
//   - Deterministic: the result depends on the evidence set, configuration,
//     observer and time only, never on the order evidence arrived in. Sums
//     that run in arrival order are exact (fixed point, 2^-32); the power
//     iteration runs in the canonical (sorted) order of organisations. The
//     same binary on the same architecture gives bit-identical scores.
//   - Sybil bound: with p(K) the pre-trust on a set K of organisations and
//     I(K) the trust the others route into K per step, K's trust mass is at
//     most ((1-α)·I(K) + p(K))/α. A collective nobody outside it dealt
//     with, and nobody pre-trusts, has mass 0, weight 0 and moves no score.
package trust
