package node

import (
	"strconv"
	"testing"
)

// A memo never holds more than its bound, and what was just added is there.
func TestMemoBounded(t *testing.T) {
	c := memo[int]{max: 8}
	for i := range 100 {
		k := strconv.Itoa(i)
		c.add(k, i)
		if v, ok := c.get(k); !ok || v != i {
			t.Fatalf("after add(%s): get = %d, %v", k, v, ok)
		}
		if len(c.m) > c.max {
			t.Fatalf("memo holds %d entries, bound %d", len(c.m), c.max)
		}
	}
	if _, ok := c.get("nothing"); ok {
		t.Fatal("get of a key never added succeeded")
	}
}
