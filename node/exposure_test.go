package node

import (
	"context"
	"log/slog"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// recordingHandler keeps every log record for inspection.
type recordingHandler struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.recs = append(h.recs, r.Clone())
	h.mu.Unlock()
	return nil
}
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

// warnings returns the messages logged at level Warn or above.
func (h *recordingHandler) warnings() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.recs {
		if r.Level >= slog.LevelWarn {
			out = append(out, r.Message)
		}
	}
	return out
}

// TestAPIBeyondLoopbackWarns starts real nodes with their API on every
// interface and on loopback: only the first logs a warning naming the
// exposure, before it is ready.
func TestAPIBeyondLoopbackWarns(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		api  string
		warn bool
	}{{"0.0.0.0:0", true}, {"127.0.0.1:0", false}} {
		home := filepath.Join(dir, strings.NewReplacer(".", "_", ":", "_").Replace(tc.api))
		if _, err := Init(home, "org", "test"); err != nil {
			t.Fatal(err)
		}
		cfg, err := LoadConfig(home)
		if err != nil {
			t.Fatal(err)
		}
		cfg.API = tc.api
		rec := &recordingHandler{}
		n, err := New(cfg, WithLogger(slog.New(rec)))
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		n.Close()
		var got []string
		for _, w := range rec.warnings() {
			if strings.Contains(w, "beyond loopback") {
				got = append(got, w)
			}
		}
		if tc.warn && len(got) != 1 {
			t.Errorf("API on %s: warnings %q, want one about the exposure", tc.api, rec.warnings())
		}
		if !tc.warn && len(got) != 0 {
			t.Errorf("API on %s: unexpected warning %q", tc.api, got)
		}
	}
}

// TestConfigMinTrustRange refuses a minTrust that is not a number from 0
// to 100: NaN would compare false with every score and admit everyone.
func TestConfigMinTrustRange(t *testing.T) {
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), -1, 100.5} {
		c := Config{Home: "x", MinTrust: v}
		c.fillDefaults()
		if err := c.Validate(); err == nil {
			t.Errorf("minTrust %v accepted", v)
		}
	}
	for _, v := range []float64{0, 42.5, 100} {
		c := Config{Home: "x", MinTrust: v}
		c.fillDefaults()
		if err := c.Validate(); err != nil {
			t.Errorf("minTrust %v: %v", v, err)
		}
	}
}
