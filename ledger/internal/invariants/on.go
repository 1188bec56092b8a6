//go:build invariants

// Package invariants gates the ledger's expensive self-checks, as pebble's
// internal/invariants does: build with -tags invariants to turn them on.
package invariants

// Enabled is true when the package is built with the invariants tag: the
// ledger then re-derives and checks its state after every write.
const Enabled = true
