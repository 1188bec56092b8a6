package node

import "sync"

// memo remembers what the node has verified, by key: at most max entries,
// starting afresh when full, so that what peers can make it remember stays
// bounded.
type memo[V any] struct {
	mu  sync.Mutex
	max int
	m   map[string]V
}

func (c *memo[V]) get(k string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	return v, ok
}

func (c *memo[V]) add(k string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= c.max {
		c.m = make(map[string]V)
	}
	c.m[k] = v
}

// Bounds of the node's memos.
const (
	sigCacheMax        = 1 << 16 // signatures verified or made here
	checkpointCacheMax = 1 << 12 // counterparties' verified checkpoints
	keyCertCacheMax    = 1 << 10 // counterparties' verified checkpoint-key certificates
)

// sigCache remembers valid signatures (protocol.VerifiedSignatures), so that
// a certificate seen in many sessions, or an envelope the node sealed
// itself, is not verified again.
type sigCache struct{ memo[struct{}] }

func newSigCache() *sigCache { return &sigCache{memo[struct{}]{max: sigCacheMax}} }

func sigKey(pub []byte, d [32]byte, sig []byte) string {
	b := make([]byte, 0, len(pub)+len(d)+len(sig))
	b = append(b, pub...)
	b = append(b, d[:]...)
	return string(append(b, sig...))
}

func (c *sigCache) Known(pub []byte, d [32]byte, sig []byte) bool {
	_, ok := c.get(sigKey(pub, d, sig))
	return ok
}

func (c *sigCache) Add(pub []byte, d [32]byte, sig []byte) {
	c.add(sigKey(pub, d, sig), struct{}{})
}
