//go:build !unix

package node

import "os"

const flockSupported = false

// flockExclusive is a no-op where flock is missing: the stores' own locks
// still refuse a second node, with a less helpful message.
func flockExclusive(*os.File) error { return nil }
