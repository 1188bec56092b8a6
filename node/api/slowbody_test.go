package api

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// dribble opens a connection to srv, sends the headers of a POST whose
// body is announced as n bytes, and then sends one byte of it every
// interval until the server answers or closes. It returns the answer's
// status (0 if the server closed without one) and how many body bytes
// were sent by then.
func dribble(t *testing.T, addr, path, token string, n int, interval time.Duration) (status int, sent int) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", path, token, n)
	sent = 1
	answered := make(chan int, 1)
	go func() {
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			answered <- 0
			return
		}
		io.Copy(io.Discard, res.Body)
		answered <- res.StatusCode
	}()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case st := <-answered:
			return st, sent
		case <-deadline:
			t.Fatalf("the server still waits for a body after 60 s (%d of %d bytes sent)", sent, n)
		case <-tick.C:
			if sent < n-1 {
				if _, err := conn.Write([]byte(" ")); err == nil {
					sent++
				}
			}
		}
	}
}

// TestSlowBodyTimesOut sends a request body one byte at a time to a real
// server: the API gives up on it (408 timeout, or the connection closed)
// long before the body is complete, while an event stream opened before
// it, a long-lived response with no body, keeps delivering events.
func TestSlowBodyTimesOut(t *testing.T) {
	f := newFake()
	slow := &slowCreate{fake: f, entered: make(chan struct{}), release: make(chan struct{})}
	h := newHarnessFor(t, f, slow, WithBodyTimeout(300*time.Millisecond), WithHeartbeat(time.Hour))
	addr := strings.TrimPrefix(h.srv.URL, "http://")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, sse := h.openEvents(ctx, buyerToken)
	await(t, h.f.subscribed, "subscription")
	// A request whose body came in at once and whose answer takes longer
	// than the body timeout.
	long := make(chan resp, 1)
	go func() { long <- h.do("POST", "/v1/agents", adminToken, `{"name":"patient"}`) }()
	<-slow.entered

	// 4096 bytes at one per 20 ms would take 80 s.
	status, sent := dribble(t, addr, "/v1/agents", adminToken, 4096, 20*time.Millisecond)
	if status != 0 && status != http.StatusRequestTimeout {
		t.Fatalf("dribbled body answered %d, want 408 or a closed connection", status)
	}
	if sent >= 4095 {
		t.Fatalf("the server waited for the whole body (%d bytes)", sent)
	}
	t.Logf("gave up after %d bytes, status %d", sent, status)

	// The stream has outlived the body timeout and still delivers.
	if !h.f.publish(buyer, Event{Type: "message", Data: map[string]string{"sessionId": "ses_1"}}) {
		t.Fatal("the event stream was cancelled")
	}
	for {
		block, err := sse.next()
		if err != nil {
			t.Fatalf("event stream: %v", err)
		}
		if len(block) > 0 && block[0] == "event: message" {
			break
		}
	}

	// The long answer, held past the body timeout, is not cut short.
	close(slow.release)
	h.expect(await(t, long, "long answer"), 201, "")

	// A body sent promptly is not affected. (The body cap: TestBodies.)
	h.expect(h.do("POST", "/v1/agents", adminToken, `{"name":"prompt"}`), 201, "")
}

// slowCreate holds the first CreateAgent until release, then answers
// unless its request was cancelled meanwhile.
type slowCreate struct {
	*fake
	entered, release chan struct{}
	once             sync.Once
}

func (s *slowCreate) CreateAgent(ctx context.Context, req CreateAgentRequest) (CreateAgentResponse, error) {
	first := false
	s.once.Do(func() { first = true })
	if first {
		close(s.entered)
		<-s.release
		if err := ctx.Err(); err != nil {
			return CreateAgentResponse{}, err
		}
	}
	return s.fake.CreateAgent(ctx, req)
}
