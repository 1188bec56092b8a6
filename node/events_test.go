package node

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aspnode/asp/node/api"
)

func ev(n int) api.Event { return api.Event{Type: "message", Data: map[string]any{"n": n}} }

func ids(evs []api.Event) []uint64 {
	var out []uint64
	for _, e := range evs {
		out = append(out, e.ID)
	}
	return out
}

// resumeFrom resumes agent's events after the id after and cancels the
// subscription.
func resumeFrom(b *bus, agent string, after uint64) (replay []uint64, gap bool, oldest, newest uint64) {
	evs, gap, oldest, newest, _, cancel := b.subscribeSince(agent, true, after)
	cancel()
	return ids(evs), gap, oldest, newest
}

func TestBusReplay(t *testing.T) {
	b := newBusRing(nil, 8, 100)
	b.publish(ev(0), "a")      // 100
	b.publish(ev(1), "b")      // 101
	b.publish(ev(2), "a", "b") // 102
	b.publish(ev(3), "a")      // 103
	replay, gap, oldest, newest, ch, cancel := b.subscribeSince("a", true, 100)
	defer cancel()
	if gap || oldest != 100 || newest != 103 || !slices.Equal(ids(replay), []uint64{102, 103}) {
		t.Fatalf("replay %v gap %v oldest %d newest %d, want [102 103] false 100 103", ids(replay), gap, oldest, newest)
	}
	b.publish(ev(4), "a")
	if e := <-ch; e.ID != 104 {
		t.Fatalf("live event %d, want 104", e.ID)
	}
	// Up to date: nothing to replay, no gap.
	if replay, gap, _, _ := resumeFrom(b, "a", 104); gap || len(replay) != 0 {
		t.Fatalf("up to date: replay %v gap %v", replay, gap)
	}
	// A fresh subscription replays nothing and gives the position.
	evs, gap, _, newest, _, cancel2 := b.subscribeSince("a", false, 0)
	cancel2()
	if len(evs) != 0 || gap || newest != 104 {
		t.Fatalf("fresh: replay %v gap %v newest %d", ids(evs), gap, newest)
	}
}

// Once some of an agent's events left the ring, a resumption from before
// them is told so, and gets what is held; other agents' events leaving is
// no gap for it.
func TestBusGap(t *testing.T) {
	b := newBusRing(nil, 4, 1)
	for i := range 10 {
		b.publish(ev(i), "a") // ids 1..10; the ring holds 7..10
	}
	if replay, gap, oldest, _ := resumeFrom(b, "a", 5); !gap || oldest != 7 || !slices.Equal(replay, []uint64{7, 8, 9, 10}) {
		t.Fatalf("replay %v gap %v oldest %d, want [7 8 9 10] true 7", replay, gap, oldest)
	}
	// The event just before the oldest held is no gap.
	if _, gap, _, _ := resumeFrom(b, "a", 6); gap {
		t.Fatal("gap after 6 with 7 held")
	}
	// An id above the newest, or below this run's first, is from another
	// run of the node: a gap, and all that is held.
	for _, after := range []uint64{99, 0} {
		if replay, gap, _, _ := resumeFrom(b, "a", after); !gap || len(replay) != 4 {
			t.Fatalf("id %d of another run: replay %v gap %v", after, replay, gap)
		}
	}
	// Another agent's events push a's out: a gap for a from before them,
	// none for c, which had no event since.
	b.publish(ev(11), "c") // 11
	for i := range 4 {
		b.publish(ev(20+i), "b") // 12..15: a's and c's leave
	}
	if _, gap, _, _ := resumeFrom(b, "a", 9); !gap {
		t.Fatal("no gap for a after its events 10 left")
	}
	if _, gap, _, _ := resumeFrom(b, "a", 10); gap {
		t.Fatal("gap for a, whose events up to 10 it had")
	}
	if _, gap, _, _ := resumeFrom(b, "c", 11); gap {
		t.Fatal("gap for c, which had its only event")
	}
}

// A subscriber that does not keep up has its stream ended instead of
// losing events silently; resuming from its last id gives back the rest.
func TestBusSlowSubscriberResumes(t *testing.T) {
	drops := 0
	b := newBusRing(func() { drops++ }, 1024, 1)
	ch, cancel := b.subscribe("a")
	defer cancel()
	for i := range subBuffer + 10 {
		b.publish(ev(i), "a")
	}
	var last uint64
	for e := range ch { // ends: the subscription was closed
		last = e.ID
	}
	if last != subBuffer || drops != 1 {
		t.Fatalf("last delivered %d, drops %d; want %d, 1", last, drops, subBuffer)
	}
	replay, gap, _, _ := resumeFrom(b, "a", last)
	if gap || len(replay) != 10 || replay[0] != last+1 {
		t.Fatalf("resumed: %v gap %v", replay, gap)
	}
}

// sseClient reads a real node's event stream.
type sseClient struct {
	cancel   context.CancelFunc
	br       *bufio.Reader
	position string
}

func openEvents(t *testing.T, n *Node, token, lastID string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", n.APIURL()+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 {
		t.Fatalf("events: %d", res.StatusCode)
	}
	t.Cleanup(func() { res.Body.Close() })
	s := &sseClient{cancel: cancel, br: bufio.NewReader(res.Body)}
	if l, _ := s.br.ReadString('\n'); l != ": subscribed\n" {
		t.Fatalf("first line %q", l)
	}
	return s
}

// next returns the next event's fields (id, event, data), skipping comments.
func (s *sseClient) next(t *testing.T) map[string]string {
	t.Helper()
	f := map[string]string{}
	for {
		l, err := s.br.ReadString('\n')
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		l = strings.TrimSuffix(l, "\n")
		switch {
		case l == "" && f["data"] != "":
			return f
		case l == "" && f["id"] != "":
			s.position = f["id"] // an id without an event
			f = map[string]string{}
		case l == "" || strings.HasPrefix(l, ":"):
		default:
			k, v, _ := strings.Cut(l, ": ")
			f[k] = v
		}
	}
}

// Through a real node's API: a stream broken off mid-way resumes with
// Last-Event-ID and gets exactly the events published meanwhile, then live
// ones; after more than the ring holds, or a restart, it gets a gap event.
func TestEventsResumeOverHTTP(t *testing.T) {
	home := filepath.Join(t.TempDir(), "n")
	n := startNode(t, home)
	defer func() { n.Close() }()
	ctx := context.Background()
	ag, err := n.CreateAgent(ctx, api.CreateAgentRequest{Name: "buyer"})
	if err != nil {
		t.Fatal(err)
	}
	s := openEvents(t, n, ag.Token, "")
	n.bus.publish(ev(1), ag.AgentID)
	first := s.next(t)
	if first["id"] == "" || first["data"] != `{"n":1}` {
		t.Fatalf("first event %v", first)
	}
	s.cancel() // the connection breaks

	for i := 2; i <= 4; i++ {
		n.bus.publish(ev(i), ag.AgentID)
		n.bus.publish(ev(-i), "agent://someone/else")
	}
	s = openEvents(t, n, ag.Token, first["id"])
	n.bus.publish(ev(5), ag.AgentID)
	var got []string
	prev := first["id"]
	for range 4 {
		e := s.next(t)
		if id(t, e) <= id(t, map[string]string{"id": prev}) {
			t.Fatalf("id %s after %s", e["id"], prev)
		}
		prev = e["id"]
		got = append(got, e["data"])
	}
	if want := []string{`{"n":2}`, `{"n":3}`, `{"n":4}`, `{"n":5}`}; !slices.Equal(got, want) {
		t.Fatalf("resumed %v, want %v", got, want)
	}
	s.cancel()

	// More than the ring holds since first: a gap, naming the oldest id held.
	for i := range EventRing {
		n.bus.publish(ev(100+i), ag.AgentID)
	}
	s = openEvents(t, n, ag.Token, first["id"])
	gap := s.next(t)
	if gap["event"] != api.EventGap || gap["id"] != "" || !strings.HasPrefix(gap["data"], fmt.Sprintf(`{"after":%s,"oldest":`, first["id"])) {
		t.Fatalf("gap event %v", gap)
	}
	if e := s.next(t); e["data"] != `{"n":100}` {
		t.Fatalf("after the gap %v, want the oldest held", e)
	}
	s.cancel()

	// A restarted node holds nothing of its earlier run: an id from it is
	// answered with a gap, never with another run's events.
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n = startNode(t, home)
	s = openEvents(t, n, ag.Token, prev)
	gap = s.next(t)
	if gap["event"] != api.EventGap {
		t.Fatalf("after a restart: %v, want a gap", gap)
	}
	n.bus.publish(ev(7), ag.AgentID)
	if e := s.next(t); e["data"] != `{"n":7}` || id(t, e) <= id(t, map[string]string{"id": prev}) {
		t.Fatalf("after a restart: %v (earlier id %s)", e, prev)
	}
	s.cancel()
}

func id(t *testing.T, e map[string]string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(e["id"], 10, 64)
	if err != nil {
		t.Fatalf("event id %q: %v", e["id"], err)
	}
	return v
}

// FuzzBus drives a small ring with publishes and resumptions and checks
// each resumption against a log that forgets nothing: the replay is
// exactly the agent's held events after the id, and there is a gap exactly
// when one of the agent's events after the id is no longer held.
func FuzzBus(f *testing.F) {
	f.Add([]byte{0, 1, 2, 0, 0, 0, 0x83, 0x45, 1, 1, 0x92})
	f.Add([]byte{0x80, 0x81, 0x82, 0xff, 0xfe})
	f.Fuzz(func(t *testing.T, ops []byte) {
		const first = 1000
		b := newBusRing(nil, 4, first)
		type logged struct {
			id     uint64
			agents []string
		}
		var log []logged
		agents := []string{"a", "b", "c"}
		for _, op := range ops {
			if op&0x80 == 0 { // publish to one or two agents
				to := []string{agents[int(op)%3]}
				if op&0x40 != 0 {
					to = append(to, agents[(int(op)+1)%3])
				}
				b.publish(ev(int(op)), to...)
				log = append(log, logged{id: first + uint64(len(log)), agents: to})
				continue
			}
			agent := agents[int(op)%3]
			after := first - 1 + uint64(op&0x1f)%uint64(len(log)+1) // an id of this run, or just before it
			replay, gap, oldest, newest := resumeFrom(b, agent, after)
			var want []uint64
			wantGap := false
			for _, e := range log {
				if e.id <= after || !slices.Contains(e.agents, agent) {
					continue
				}
				if e.id < oldest {
					wantGap = true
				} else {
					want = append(want, e.id)
				}
			}
			if len(log) > 0 && newest != log[len(log)-1].id || oldest != first+uint64(max(0, len(log)-4)) {
				t.Fatalf("oldest %d newest %d after %d events", oldest, newest, len(log))
			}
			if !slices.Equal(replay, want) || gap != wantGap {
				t.Fatalf("%s after %d: replay %v gap %v, want %v %v", agent, after, replay, gap, want, wantGap)
			}
		}
	})
}

// Message events are built for an agent with a stream, and for one whose
// stream broke off (it comes back for them), not for an agent that never
// opened one.
func TestBusHas(t *testing.T) {
	b := newBusRing(nil, 8, 1)
	if b.has("a") {
		t.Fatal("events wanted for an agent that never subscribed")
	}
	_, cancel := b.subscribe("a")
	if !b.has("a") {
		t.Fatal("no events wanted for a subscribed agent")
	}
	cancel()
	if !b.has("a") {
		t.Fatal("no events wanted for an agent whose stream broke off")
	}
}

// BenchmarkBusPublish: one event into the ring and to one subscriber.
func BenchmarkBusPublish(b *testing.B) {
	bus := newBusRing(nil, EventRing, 1)
	ch, cancel := bus.subscribe("a")
	defer cancel()
	e := ev(1)
	for b.Loop() {
		bus.publish(e, "a", "b")
		<-ch
	}
}

// BenchmarkBusResume: a resumption that replays a full ring of the
// agent's events.
func BenchmarkBusResume(b *testing.B) {
	bus := newBusRing(nil, EventRing, 1)
	for i := range EventRing {
		bus.publish(ev(i), "a")
	}
	for b.Loop() {
		evs, _, _, _, _, cancel := bus.subscribeSince("a", true, 1)
		cancel()
		if len(evs) != EventRing-1 {
			b.Fatal(len(evs))
		}
	}
}
