package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/node/client"
)

// eventLog is the backend's events: every one published is kept (ids 1,
// 2, ...) except those before oldest, which it "lost", as a node's ring
// does.
type eventLog struct {
	mu      sync.Mutex
	events  []api.Event
	oldest  uint64
	subs    []chan api.Event
	resumes chan string // "after N" or "fresh", on each subscription
}

func (b *backend) Subscribe(agent string) (<-chan api.Event, func()) {
	_, ch, cancel := b.subscribe("fresh", func([]api.Event) []api.Event { return nil })
	return ch, cancel
}

func (b *backend) SubscribeSince(agent string, resume bool, after uint64) (api.Replay, <-chan api.Event, func()) {
	l := &b.events
	var r api.Replay
	what := fmt.Sprint("after ", after)
	if !resume {
		what = "fresh"
	}
	_, ch, cancel := b.subscribe(what, func(evs []api.Event) []api.Event {
		r.Newest = uint64(len(evs))
		if !resume {
			return nil
		}
		r.Oldest = max(l.oldest, 1)
		r.Gap = after+1 < r.Oldest
		for _, e := range evs {
			if e.ID > after && e.ID >= l.oldest {
				r.Events = append(r.Events, e)
			}
		}
		return r.Events
	})
	return r, ch, cancel
}

// subscribe registers a subscription and computes its replay under the
// log's lock.
func (b *backend) subscribe(what string, replay func([]api.Event) []api.Event) ([]api.Event, <-chan api.Event, func()) {
	l := &b.events
	l.mu.Lock()
	ch := make(chan api.Event, 64)
	l.subs = append(l.subs, ch)
	r := replay(l.events)
	l.mu.Unlock()
	if l.resumes != nil {
		l.resumes <- what
	}
	return r, ch, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if i := slices.Index(l.subs, ch); i >= 0 {
			l.subs = slices.Delete(l.subs, i, i+1)
			close(ch)
		}
	}
}

// publish appends an event and sends it to every live subscription.
func (b *backend) publish(n int) {
	l := &b.events
	l.mu.Lock()
	defer l.mu.Unlock()
	ev := api.Event{ID: uint64(len(l.events) + 1), Type: "commitment", Data: map[string]int{"n": n}}
	l.events = append(l.events, ev)
	for _, ch := range l.subs {
		ch <- ev
	}
}

// closeSubs ends every stream, as a node does for a slow subscriber.
func (b *backend) closeSubs() {
	l := &b.events
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ch := range l.subs {
		close(ch)
	}
	l.subs = nil
}

func (b *backend) forgetBefore(id uint64) {
	b.events.mu.Lock()
	b.events.oldest = id
	b.events.mu.Unlock()
}

func awaitResume(t *testing.T, b *backend) string {
	t.Helper()
	select {
	case s := <-b.events.resumes:
		return s
	case <-time.After(30 * time.Second):
		t.Fatal("no subscription")
		return ""
	}
}

func nextN(t *testing.T, s *client.EventStream) int {
	t.Helper()
	ev, err := s.Next()
	if err != nil {
		t.Fatal(err)
	}
	var d struct{ N int }
	if err := ev.Decode(&d); err != nil || ev.Type != "commitment" || ev.ID != fmt.Sprint(d.N) {
		t.Fatalf("event %+v (%v)", ev, err)
	}
	return d.N
}

// The stream reconnects by itself when the node ends it, resumes after the
// last event it returned, and returns every event once, in order; when the
// node lost some it returns the gap event first; a revoked token ends it.
func TestEventsAutoResume(t *testing.T) {
	b := newBackend()
	b.events.resumes = make(chan string, 16)
	admin := serve(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	created, _ := admin.CreateAgent(ctx, api.CreateAgentRequest{Name: "buyer"})
	buyer := admin.WithToken(created.Token)

	s := buyer.Events(ctx, client.EventsOptions{MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	defer s.Close()
	if err := s.Connect(); err != nil {
		t.Fatal(err)
	}
	if got := awaitResume(t, b); got != "fresh" {
		t.Fatalf("first subscription %q", got)
	}
	b.publish(1)
	b.publish(2)
	var got []int
	got = append(got, nextN(t, s), nextN(t, s))

	// The node ends the stream; events come meanwhile.
	b.closeSubs()
	b.publish(3)
	b.publish(4)
	got = append(got, nextN(t, s))
	if r := awaitResume(t, b); r != "after 2" {
		t.Fatalf("resumed %q, want after 2", r)
	}
	got = append(got, nextN(t, s))
	b.publish(5)
	got = append(got, nextN(t, s))
	if !slices.Equal(got, []int{1, 2, 3, 4, 5}) || s.LastEventID() != "5" || s.Connects() != 2 {
		t.Fatalf("events %v, last id %s, connects %d", got, s.LastEventID(), s.Connects())
	}

	// Events 6 and 7 come while the stream is down, and the node loses 6.
	b.closeSubs()
	b.publish(6)
	b.publish(7)
	b.forgetBefore(7)
	ev, err := s.Next()
	if err != nil {
		t.Fatal(err)
	}
	g, ok := ev.Gap()
	if !ok || g.After != 5 || g.Oldest != 7 || ev.ID != "" {
		t.Fatalf("after a lost event: %+v, want the gap event", ev)
	}
	if n := nextN(t, s); n != 7 {
		t.Fatalf("after the gap: %d, want 7", n)
	}

	// A revoked token ends the stream with the node's answer.
	if err := admin.DeleteAgent(ctx, created.AgentID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Next(); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("after the agent was deleted: %v", err)
	}
}

// A connection silent for longer than IdleTimeout (no event, no heartbeat)
// is made again; the context ends the stream.
func TestEventsIdleReconnect(t *testing.T) {
	var mu sync.Mutex
	var lastIDs []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
		n := len(lastIDs)
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		fmt.Fprintf(w, ": subscribed\n\nid: %d\nevent: trust\ndata: {\"n\":\ndata: %d}\n\n", n, n)
		w.(http.Flusher).Flush()
		<-r.Context().Done() // then silence
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	s := client.New(srv.URL, "t").Events(ctx, client.EventsOptions{IdleTimeout: 50 * time.Millisecond, MinBackoff: time.Millisecond})
	for want := 1; want <= 3; want++ {
		ev, err := s.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.ID != fmt.Sprint(want) || ev.Type != "trust" || string(ev.Data) != fmt.Sprintf("{\"n\":\n%d}", want) {
			t.Fatalf("event %+v, want id %d", ev, want)
		}
	}
	mu.Lock()
	if !slices.Equal(lastIDs, []string{"", "1", "2"}) {
		t.Errorf("Last-Event-ID sent %q", lastIDs)
	}
	mu.Unlock()
	cancel()
	if _, err := s.Next(); !errors.Is(err, context.Canceled) {
		t.Fatalf("after cancel: %v", err)
	}
}

// A stream that breaks before it returned any event resumes from the
// position the node gave when it connected: an event published in between
// is not lost.
func TestEventsResumeBeforeFirstEvent(t *testing.T) {
	b := newBackend()
	b.events.resumes = make(chan string, 16)
	admin := serve(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	created, _ := admin.CreateAgent(ctx, api.CreateAgentRequest{Name: "buyer"})
	b.publish(1) // before the stream: not for it

	s := admin.WithToken(created.Token).Events(ctx, client.EventsOptions{MinBackoff: time.Millisecond})
	defer s.Close()
	if err := s.Connect(); err != nil {
		t.Fatal(err)
	}
	awaitResume(t, b)
	b.closeSubs()
	b.publish(2)
	if n := nextN(t, s); n != 2 {
		t.Fatalf("first event %d, want 2", n)
	}
	if r := awaitResume(t, b); r != "after 1" {
		t.Fatalf("reconnected %q, want after 1", r)
	}
}
