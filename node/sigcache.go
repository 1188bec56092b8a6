package node

import "sync"

// sigCache remembers valid signatures (protocol.VerifiedSignatures), so that
// a certificate seen in many sessions, or an envelope the node sealed
// itself, is not verified again. It holds at most sigCacheMax entries and
// starts afresh when full.
type sigCache struct {
	mu sync.Mutex
	m  map[string]struct{}
}

const sigCacheMax = 1 << 16

func sigKey(pub []byte, d [32]byte, sig []byte) string {
	b := make([]byte, 0, len(pub)+len(d)+len(sig))
	b = append(b, pub...)
	b = append(b, d[:]...)
	return string(append(b, sig...))
}

func (c *sigCache) Known(pub []byte, d [32]byte, sig []byte) bool {
	k := sigKey(pub, d, sig)
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.m[k]
	return ok
}

func (c *sigCache) Add(pub []byte, d [32]byte, sig []byte) {
	k := sigKey(pub, d, sig)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= sigCacheMax {
		c.m = make(map[string]struct{})
	}
	c.m[k] = struct{}{}
}
