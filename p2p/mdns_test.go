package p2p

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aspnode/asp/internal/netnstest"
	"github.com/libp2p/go-libp2p/core/network"
	"go.uber.org/goleak"
)

// logBuffer is an io.Writer safe for concurrent use, for a slog handler.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestMDNS checks Config.MDNS: two hosts announcing the same service on the
// LAN, with no bootstrap peers, find and connect to each other, log the
// find at info level, and leave nothing running once closed. mDNS
// multicasts on every interface, so the test runs in a network namespace of
// its own whose only interface is loopback (netnstest, which needs root).
func TestMDNS(t *testing.T) {
	if !netnstest.Run(t) {
		return
	}
	var logs logBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	start := func() *Host {
		h, err := New(context.Background(), Config{
			Key:         newKey(t),
			ListenAddrs: []string{listenAddr("tcp")},
			MDNS:        "asp-p2p-test",
		}, WithLogger(logger))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	a, b := start(), start()

	// mDNS queries again after 4 s, then at growing intervals: a host
	// that missed the first exchange may wait tens of seconds on a loaded
	// machine, so the deadline is generous.
	deadline := time.Now().Add(time.Minute)
	found := func() bool {
		if a.Host().Network().Connectedness(b.ID()) != network.Connected {
			return false
		}
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "level=INFO") && strings.Contains(l, `msg="found a node on the LAN"`) {
				return true
			}
		}
		return false
	}
	for !found() {
		if time.Now().After(deadline) {
			t.Fatalf("the two hosts did not connect over mDNS and log it within a minute; log:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	for _, h := range []*Host{a, b} {
		if err := h.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}
	// Close stops the mDNS service and waits for the dials it started.
	goleak.VerifyNone(t)
}
