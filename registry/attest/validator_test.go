package attest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
)

// message is what GossipSub hands the validator for data published by
// origin.
func message(data []byte, origin peer.ID) *pubsub.Message {
	topic := Topic
	return &pubsub.Message{Message: &pb.Message{Data: data, Topic: &topic, From: []byte(origin)}, ReceivedFrom: origin}
}

func newService(t *testing.T, cfg Config) *Service {
	t.Helper()
	if cfg.Clock == nil {
		cfg.Clock = fixedClock(testNow)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestValidatorWindow(t *testing.T) {
	f := newFixture(t, "window")
	s := newService(t, Config{Horizon: 24 * time.Hour, MaxSkew: time.Minute})
	cases := []struct {
		at     time.Time
		result pubsub.ValidationResult
		err    error
	}{
		{testNow.Add(-25 * time.Hour), pubsub.ValidationIgnore, ErrStale}, // older than the horizon
		{testNow.Add(2 * time.Minute), pubsub.ValidationIgnore, ErrStale}, // ahead of the clock
		{testNow.Add(30 * time.Second), pubsub.ValidationAccept, nil},     // within the skew
		{testNow.Add(-23 * time.Hour), pubsub.ValidationReject, ErrMismatch},
		{testNow.Add(-time.Hour), pubsub.ValidationAccept, nil},
	}
	for _, tc := range cases {
		a := f.attest(t, Fulfilled, tc.at)
		r, err := s.judge(message(mustEncode(t, a), "origin"))
		if r != tc.result || !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
			t.Errorf("attestation at %v: %v, %v; want %v, %v", tc.at, r, err, tc.result, tc.err)
		}
	}
	// Ignored items are not remembered: once in the window, they pass.
	a := f.attest(t, Fulfilled, testNow.Add(2*time.Minute))
	b := mustEncode(t, a)
	if r, _ := s.judge(message(b, "origin")); r != pubsub.ValidationIgnore {
		t.Fatalf("ahead of the clock: %v", r)
	}
	s.cfg.Clock = fixedClock(testNow.Add(2 * time.Minute))
	if r, err := s.judge(message(b, "origin")); r != pubsub.ValidationAccept {
		t.Fatalf("in the window later: %v, %v", r, err)
	}
}

func TestValidatorRemembers(t *testing.T) {
	f := newFixture(t, "remember")
	s := newService(t, Config{})
	a := f.attest(t, Fulfilled, t0.Add(time.Hour))
	good := mustEncode(t, a)
	a.Outcome = Breached
	forged := mustEncode(t, a)

	if r, err := s.judge(message(good, "a")); r != pubsub.ValidationAccept {
		t.Fatalf("first: %v, %v", r, err)
	}
	if r, err := s.judge(message(good, "b")); r != pubsub.ValidationIgnore || !errors.Is(err, ErrDuplicate) {
		t.Fatalf("again: %v, %v", r, err)
	}
	for range 2 {
		if r, err := s.judge(message(forged, "c")); r != pubsub.ValidationReject || !errors.Is(err, ErrForged) {
			t.Fatalf("forged: %v, %v", r, err)
		}
	}
}

func TestValidatorConcurrentCopies(t *testing.T) {
	f := newFixture(t, "copies")
	s := newService(t, Config{})
	b := mustEncode(t, f.attest(t, Fulfilled, t0.Add(time.Hour)))
	const n = 16
	results := make([]pubsub.ValidationResult, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			results[i], _ = s.judge(message(b, peer.ID(rune('a'+i))))
		})
	}
	wg.Wait()
	accepted := 0
	for _, r := range results {
		switch r {
		case pubsub.ValidationAccept:
			accepted++
		case pubsub.ValidationIgnore:
		default:
			t.Fatalf("result %v", r)
		}
	}
	if accepted != 1 {
		t.Fatalf("%d copies accepted, want 1", accepted)
	}
}

func TestValidatorRateLimit(t *testing.T) {
	f := newFixture(t, "rate")
	s := newService(t, Config{Rate: 1, Burst: 2}) // the clock stands still
	for i := range 5 {
		b := mustEncode(t, f.attest(t, Fulfilled, t0.Add(time.Hour+time.Duration(i)*time.Millisecond)))
		r, err := s.judge(message(b, "flooder"))
		want := pubsub.ValidationAccept
		if i >= 2 {
			want = pubsub.ValidationIgnore
			if !errors.Is(err, ErrRateLimited) {
				t.Fatalf("message %d: %v", i, err)
			}
		}
		if r != want {
			t.Fatalf("message %d: %v, want %v", i, r, want)
		}
		// Another origin has its own bucket.
		b = mustEncode(t, f.attest(t, Breached, t0.Add(time.Hour+time.Duration(i)*time.Millisecond)))
		if i < 2 {
			if r, err := s.judge(message(b, "other")); r != pubsub.ValidationAccept {
				t.Fatalf("other origin, message %d: %v, %v", i, r, err)
			}
		}
	}
	// A rate-limited item is not remembered: once tokens are back, it passes.
	s.cfg.Clock = fixedClock(testNow.Add(time.Second))
	b := mustEncode(t, f.attest(t, Fulfilled, t0.Add(time.Hour+4*time.Millisecond)))
	if r, err := s.judge(message(b, "flooder")); r != pubsub.ValidationAccept {
		t.Fatalf("after refill: %v, %v", r, err)
	}
}

func TestAppScore(t *testing.T) {
	s := newService(t, Config{})
	if s.AppScore("p") != 0 {
		t.Fatal("no function: want 0")
	}
	s.SetAppScore(func(p peer.ID) float64 {
		switch p {
		case "good":
			return 5
		case "nan":
			return nan()
		}
		return -3
	})
	if s.AppScore("good") != 5 || s.AppScore("bad") != -3 || s.AppScore("nan") != 0 {
		t.Fatalf("scores %v %v %v", s.AppScore("good"), s.AppScore("bad"), s.AppScore("nan"))
	}
	s.SetAppScore(nil)
	if s.AppScore("good") != 0 {
		t.Fatal("cleared: want 0")
	}
}

func nan() float64 { z := 0.0; return z / z }

// The second attestation about a commitment reuses the verified evidence;
// the checks that depend on the attestation still run.
func TestValidatorEvidenceCache(t *testing.T) {
	f := newFixture(t, "evidence")
	s := newService(t, Config{})
	at := t0.Add(time.Hour)
	if r, err := s.judge(message(mustEncode(t, f.attest(t, Fulfilled, at)), "a")); r != pubsub.ValidationAccept {
		t.Fatalf("buyer's: %v, %v", r, err)
	}
	if s.evidence.Len() != 1 {
		t.Fatalf("%d commitments cached, want 1", s.evidence.Len())
	}
	v, err := FromCommitment(f.c, Fulfilled, at, f.vendor.AgentKey, f.vendorCert)
	if err != nil {
		t.Fatal(err)
	}
	// The vendor's node lists its own receipt first: the same evidence.
	slices.Reverse(v.Receipts)
	if err := v.Sign(f.vendor.AgentKey); err != nil {
		t.Fatal(err)
	}
	if r, err := s.judge(message(mustEncode(t, v), "b")); r != pubsub.ValidationAccept {
		t.Fatalf("vendor's: %v, %v", r, err)
	}
	o := f.attest(t, Breached, at)
	resign(t, o, f.outsider.AgentKey, f.outsiderCert)
	if r, err := s.judge(message(mustEncode(t, o), "c")); r != pubsub.ValidationReject || !errors.Is(err, ErrNotParty) {
		t.Fatalf("outsider's, with cached evidence: %v, %v", r, err)
	}
	w := f.attest(t, Breached, at)
	w.CommitmentID = "cmt_00000000000000000000000000000000"
	resign(t, w, f.buyer.AgentKey, f.buyerCert)
	if r, err := s.judge(message(mustEncode(t, w), "d")); r != pubsub.ValidationReject || !errors.Is(err, ErrMismatch) {
		t.Fatalf("other commitment id, with cached evidence: %v, %v", r, err)
	}
	if s.evidence.Len() != 1 {
		t.Fatalf("%d commitments cached, want 1", s.evidence.Len())
	}
}

func TestServiceLifecycle(t *testing.T) {
	f := newFixture(t, "lifecycle")
	h := newHost(t)
	s := newService(t, Config{})
	a := f.attest(t, Fulfilled, t0.Add(time.Hour))
	ctx := context.Background()
	if err := s.Publish(ctx, a); !errors.Is(err, ErrClosed) {
		t.Fatalf("Publish before Join = %v, want ErrClosed", err)
	}
	if err := s.Join(ctx, h.PubSub()); err != nil {
		t.Fatal(err)
	}
	if err := s.Join(ctx, h.PubSub()); err == nil {
		t.Fatal("second Join succeeded")
	}
	ch, cancel := s.Subscribe()
	if err := s.Publish(ctx, a); err != nil {
		t.Fatal(err)
	}
	if d := <-ch; !d.Local || d.Attestation.CommitmentID != f.c.ID {
		t.Fatalf("delivery %+v", d)
	}
	cancel()
	cancel()
	if _, ok := <-ch; ok {
		t.Fatal("channel open after cancel")
	}
	ch2, _ := s.Subscribe()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-ch2; ok {
		t.Fatal("channel open after Close")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Publish(ctx, f.attest(t, Breached, t0.Add(time.Hour))); !errors.Is(err, ErrClosed) {
		t.Fatalf("Publish after Close = %v, want ErrClosed", err)
	}
	if ch3, _ := s.Subscribe(); ch3 != nil {
		if _, ok := <-ch3; ok {
			t.Fatal("Subscribe after Close: channel open")
		}
	}
	// The topic is free again: another Service can join the same router.
	s2 := newService(t, Config{})
	if err := s2.Join(ctx, h.PubSub()); err != nil {
		t.Fatalf("join after Close: %v", err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
}
