package api

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// sseReader reads server-sent events.
type sseReader struct {
	t  *testing.T
	br *bufio.Reader
}

// next returns the next block (lines up to a blank line).
func (s *sseReader) next() ([]string, error) {
	var lines []string
	for {
		l, err := s.br.ReadString('\n')
		if err != nil {
			return lines, err
		}
		l = strings.TrimSuffix(l, "\n")
		if l == "" {
			return lines, nil
		}
		lines = append(lines, l)
	}
}

func (h *harness) openEvents(ctx context.Context, token string) (*http.Response, *sseReader) {
	h.t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", h.srv.URL+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		h.t.Fatalf("events: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	return res, &sseReader{t: h.t, br: bufio.NewReader(res.Body)}
}

// await waits for a value on ch, failing after a generous deadline.
func await[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s", what)
		panic("unreachable")
	}
}

func TestEvents(t *testing.T) {
	h := newHarness(t, WithHeartbeat(time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, sse := h.openEvents(ctx, buyerToken)
	if got := await(t, h.f.subscribed, "subscription"); got != buyer {
		t.Fatalf("subscribed %q, want the caller %q", got, buyer)
	}
	if !h.f.publish(buyer, Event{Type: "message", Data: map[string]any{"sessionId": "ses_1", "performative": "COUNTER", "note": "a\nb"}}) {
		t.Fatal("no subscription")
	}
	h.f.publish(buyer, Event{Type: "commitment", Data: json.RawMessage("{\n\"commitmentId\": \"cmt_1\"}")})

	var got [][]string
	heartbeat := false
	for len(got) < 2 || !heartbeat {
		block, err := sse.next()
		if err != nil {
			t.Fatalf("read: %v (got %v)", err, got)
		}
		switch {
		case len(block) == 1 && block[0] == ": heartbeat":
			heartbeat = true
		case len(block) > 0 && strings.HasPrefix(block[0], ":"):
		default:
			got = append(got, block)
		}
	}
	want := [][]string{
		{"event: message", `data: {"note":"a\nb","performative":"COUNTER","sessionId":"ses_1"}`},
		{"event: commitment", `data: {"commitmentId":"cmt_1"}`},
	}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("events\n%q\nwant\n%q", got, want)
	}

	// The client leaves: the subscription is cancelled.
	cancel()
	if a := await(t, h.f.cancelled, "cancel"); a != buyer {
		t.Fatalf("cancelled %q", a)
	}
}

func TestEventsEndWhenBackendCloses(t *testing.T) {
	h := newHarness(t)
	_, sse := h.openEvents(context.Background(), eveToken)
	await(t, h.f.subscribed, "subscription")
	h.expect(h.do("DELETE", "/v1/agents/"+esc(eve), adminToken, ""), 204, "")
	for {
		if _, err := sse.next(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	await(t, h.f.cancelled, "cancel")
}
