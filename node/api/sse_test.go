package api

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// replayer is the fake with the EventReplayer extension: it answers every
// resumption with replay and reports the id asked for.
type replayer struct {
	*fake
	replay Replay
	after  chan uint64
}

func (r *replayer) SubscribeSince(agent string, resume bool, after uint64) (Replay, <-chan Event, func()) {
	if !resume {
		after = 0
		r.replay.Events = nil
	}
	r.after <- after
	ch, cancel := r.fake.Subscribe(agent)
	return r.replay, ch, cancel
}

// openEventsWith opens the stream with extra headers and a query.
func (h *harness) openEventsWith(ctx context.Context, token, query string, hdr map[string]string) (*http.Response, *sseReader) {
	h.t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", h.srv.URL+"/v1/events"+query, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { res.Body.Close() })
	return res, &sseReader{t: h.t, br: bufio.NewReader(res.Body)}
}

// events reads n event blocks, skipping comments.
func (s *sseReader) events(n int) [][]string {
	s.t.Helper()
	var got [][]string
	for len(got) < n {
		block, err := s.next()
		if err != nil {
			s.t.Fatalf("read: %v (got %q)", err, got)
		}
		if len(block) > 0 && !strings.HasPrefix(block[0], ":") {
			got = append(got, block)
		}
	}
	return got
}

// A resumed stream sends the replayed events with their ids, then live
// ones, and skips a live event the replay already carried.
func TestEventsResumeReplays(t *testing.T) {
	f := newFake()
	r := &replayer{fake: f, after: make(chan uint64, 1), replay: Replay{Oldest: 3, Newest: 9, Events: []Event{
		{ID: 7, Type: "message", Data: map[string]any{"n": 7}},
		{ID: 9, Type: "session", Data: map[string]any{"n": 9}},
	}}}
	h := newHarnessFor(t, f, r)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res, sse := h.openEventsWith(ctx, buyerToken, "?since=1", map[string]string{"Last-Event-ID": "6"})
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	if a := await(t, r.after, "resumption"); a != 6 {
		t.Fatalf("resumed after %d, want 6 (the header wins over ?since=)", a)
	}
	await(t, f.subscribed, "subscription")
	f.publish(buyer, Event{ID: 9, Type: "session", Data: map[string]any{"n": 9}})
	f.publish(buyer, Event{ID: 10, Type: "commitment", Data: map[string]any{"n": 10}})
	got := sse.events(3)
	want := [][]string{
		{"id: 7", "event: message", `data: {"n":7}`},
		{"id: 9", "event: session", `data: {"n":9}`},
		{"id: 10", "event: commitment", `data: {"n":10}`},
	}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("events\n%q\nwant\n%q", got, want)
	}
}

// When the backend no longer holds every event after the id, the stream
// opens with a gap event naming the oldest id held, then what is held.
func TestEventsResumeGap(t *testing.T) {
	f := newFake()
	r := &replayer{fake: f, after: make(chan uint64, 1), replay: Replay{Gap: true, Oldest: 40, Newest: 44, Events: []Event{
		{ID: 41, Type: "message", Data: map[string]any{"n": 41}},
	}}}
	h := newHarnessFor(t, f, r)
	_, sse := h.openEventsWith(context.Background(), buyerToken, "?since=5", nil)
	if a := await(t, r.after, "resumption"); a != 5 {
		t.Fatalf("resumed after %d, want 5", a)
	}
	got := sse.events(3)
	want := [][]string{
		{"event: gap", `data: {"after":5,"oldest":40}`},
		{"id: 41", "event: message", `data: {"n":41}`},
		{"id: 44"}, // the position: events 42 to 44 were other agents'
	}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("events\n%q\nwant\n%q", got, want)
	}
}

// A backend that keeps no events answers a resumption with a gap (oldest
// 0) rather than silently starting afresh; a fresh stream has no gap.
func TestEventsResumeWithoutReplayer(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, sse := h.openEventsWith(ctx, buyerToken, "", map[string]string{"Last-Event-ID": "12"})
	await(t, h.f.subscribed, "subscription")
	h.f.publish(buyer, Event{ID: 13, Type: "trust", Data: map[string]any{}})
	got := sse.events(2)
	want := [][]string{
		{"event: gap", `data: {"after":12,"oldest":0}`},
		{"id: 13", "event: trust", `data: {}`},
	}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("events\n%q\nwant\n%q", got, want)
	}
}

func TestEventsResumeBadID(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct{ query, header string }{
		{"?since=x", ""}, {"?since=-1", ""}, {"", "abc"}, {"?since=3", "1.5"},
	} {
		hdr := map[string]string{}
		if tc.header != "" {
			hdr["Last-Event-ID"] = tc.header
		}
		res, _ := h.openEventsWith(context.Background(), buyerToken, tc.query, hdr)
		if res.StatusCode != 400 {
			t.Errorf("%q %q: status %d, want 400", tc.query, tc.header, res.StatusCode)
		}
	}
}

// A fresh stream starts with the node's position, an id without an event,
// so that a client that reconnects before any event of its own resumes
// from there instead of starting afresh.
func TestEventsFreshStreamHasPosition(t *testing.T) {
	f := newFake()
	r := &replayer{fake: f, after: make(chan uint64, 1), replay: Replay{Oldest: 3, Newest: 30}}
	h := newHarnessFor(t, f, r)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, sse := h.openEventsWith(ctx, buyerToken, "", nil)
	await(t, r.after, "subscription")
	await(t, f.subscribed, "subscription")
	f.publish(buyer, Event{ID: 30, Type: "session", Data: map[string]any{}}) // not after the position: skipped
	f.publish(buyer, Event{ID: 31, Type: "session", Data: map[string]any{}})
	got := sse.events(2)
	want := [][]string{{"id: 30"}, {"id: 31", "event: session", "data: {}"}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("events\n%q\nwant\n%q", got, want)
	}
}

// The OpenAPI document describes resumption: the Last-Event-ID header, the
// since parameter, and the gap event's data.
func TestOpenAPIEvents(t *testing.T) {
	h := newHarness(t)
	r := h.do("GET", "/v1/openapi.json", buyerToken, "")
	var doc struct {
		Paths map[string]map[string]struct {
			Description string `json:"description"`
			Parameters  []struct {
				Name, In string
			} `json:"parameters"`
			Events map[string]map[string]any `json:"x-asp-events"`
		} `json:"paths"`
		Components struct {
			Schemas map[string]struct {
				Properties map[string]any `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatal(err)
	}
	op := doc.Paths["/v1/events"]["get"]
	var params []string
	for _, p := range op.Parameters {
		params = append(params, p.In+":"+p.Name)
	}
	if !slices.Equal(params, []string{"header:Last-Event-ID", "query:since"}) {
		t.Errorf("parameters %v", params)
	}
	if !strings.Contains(op.Description, "gap") || !strings.Contains(op.Description, "4096") {
		t.Errorf("description %q", op.Description)
	}
	if ref, _ := op.Events["gap"]["$ref"].(string); ref != "#/components/schemas/GapEvent" {
		t.Errorf("gap event schema %v", op.Events)
	}
	if p := doc.Components.Schemas["GapEvent"].Properties; p["after"] == nil || p["oldest"] == nil {
		t.Errorf("GapEvent schema %v", p)
	}
}

// Shutting the server down ends open event streams, so that Shutdown does
// not wait for its deadline.
func TestEventsEndOnShutdown(t *testing.T) {
	h := newHarness(t)
	_, sse := h.openEvents(context.Background(), buyerToken)
	await(t, h.f.subscribed, "subscription")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.srv.Config.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with a stream open: %v", err)
	}
	for {
		if _, err := sse.next(); err != nil {
			break
		}
	}
	await(t, h.f.cancelled, "cancel")
}
