package procnet_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aspnode/asp/node/api"
	"github.com/aspnode/asp/node/client"
	"github.com/aspnode/asp/testnet/procnet"
	"github.com/aspnode/asp/testnet/scenario"
)

// crashNegotiations is how many negotiations TestCrashWedgesNoSession
// runs: ASP_CRASH_NEGOTIATIONS, 1,000 by default (about 20 s on 2 cores;
// with a few hundred the kill can land where nothing is in flight).
func crashNegotiations(t *testing.T) int {
	t.Helper()
	s := os.Getenv("ASP_CRASH_NEGOTIATIONS")
	if s == "" {
		return 1000
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("ASP_CRASH_NEGOTIATIONS=%q: want a positive integer", s)
	}
	return n
}

// TestCrashWedgesNoSession runs many concurrent four-move negotiations
// (PROPOSE, COUNTER, PROPOSE, ACCEPT) through the HTTP API, kills the
// vendor's node with SIGKILL halfway and restarts it while the agents keep
// moving (each move retried until its node holds it). Every negotiation
// must finish with its commitment ACTIVE on both nodes (or its session
// CLOSED or FAILED on both), both nodes must hold the same transcript of
// every session, and both ledgers must verify: no session is wedged.
func TestCrashWedgesNoSession(t *testing.T) {
	total := crashNegotiations(t)
	net := startNet(t, 2)
	n0, n1 := net.Nodes[0], net.Nodes[1]
	budget := 3*time.Minute + time.Duration(total)*300*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), budget+2*time.Minute)
	defer cancel()
	buyer, vendor := newAgents(t, ctx, net)
	clients := [2]func() *client.Client{
		func() *client.Client { return n0.Client(buyer.Token) },
		func() *client.Client { return n1.Client(vendor.Token) },
	}

	var moves atomic.Int64 // moves acknowledged
	killAt := int64(total * 4 / 2)
	killed := make(chan struct{})
	var killOnce sync.Once
	kill := func() {
		killOnce.Do(func() {
			if err := n1.Kill(); err != nil {
				t.Errorf("kill: %v", err)
			}
			t.Logf("node-1 killed after %d moves", moves.Load())
			close(killed)
		})
	}
	restarted := make(chan error, 1)
	go func() {
		select {
		case <-killed:
		case <-ctx.Done():
			restarted <- ctx.Err()
			return
		}
		restarted <- n1.Restart(ctx, mustLoopback(t, n0))
	}()

	negCtx, stop := context.WithTimeout(ctx, budget)
	defer stop()
	var (
		mu       sync.Mutex
		sessions []string
		stuck    []string
	)
	// Half of them at a time, so that at the crash sessions are at every
	// stage.
	sem := make(chan struct{}, max(1, min(total/2, 500)))
	var wg sync.WaitGroup
	for i := 0; i < total; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			sid, err := negotiate(negCtx, clients, vendor.ID, func() {
				if moves.Add(1) == killAt {
					kill()
				}
			})
			mu.Lock()
			defer mu.Unlock()
			if sid != "" {
				sessions = append(sessions, sid)
			}
			if err != nil {
				stuck = append(stuck, fmt.Sprintf("negotiation %d (session %s): %v", i, sid, err))
			}
		}()
	}
	wg.Wait()
	kill() // if fewer moves were made than expected
	if err := <-restarted; err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Logf("%d negotiations, %d sessions opened, %d moves acknowledged, %d not finished", total, len(sessions), moves.Load(), len(stuck))
	if len(stuck) > 0 {
		t.Errorf("%d negotiations wedged:\n%s", len(stuck), strings.Join(stuck[:min(len(stuck), 20)], "\n"))
	}

	// Every session: the same transcript on both nodes, and finished.
	var problems []string
	outcomes := map[string]int{}
	err := scenario.Await(ctx, func() bool {
		problems = problems[:0]
		clear(outcomes)
		for _, sid := range sessions {
			var infos [2]api.SessionInfo
			for i, nd := range []*procnet.Node{n0, n1} {
				info, err := nd.Admin().Session(ctx, sid)
				if err != nil {
					problems = append(problems, fmt.Sprintf("%s on %s: %v", sid, nd.Name, err))
					break
				}
				infos[i] = info
			}
			if len(problems) > 0 {
				continue
			}
			if !sameMessages(infos[0].Messages, infos[1].Messages) {
				problems = append(problems, fmt.Sprintf("%s: %d messages (%s) on the buyer's node, %d (%s) on the vendor's",
					sid, len(infos[0].Messages), infos[0].State, len(infos[1].Messages), infos[1].State))
				continue
			}
			st := infos[0].State
			if infos[0].CommitmentID != "" {
				outcomes["commitment ACTIVE"]++
			} else {
				outcomes[st]++
			}
			switch {
			case st == "CLOSED" || st == "FAILED":
				if infos[1].State != st {
					problems = append(problems, fmt.Sprintf("%s: %s on the buyer's node, %s on the vendor's", sid, st, infos[1].State))
				}
			case infos[0].CommitmentID != "":
				for _, nd := range []*procnet.Node{n0, n1} {
					c, err := nd.Admin().Commitment(ctx, infos[0].CommitmentID)
					if err != nil || c.State != "ACTIVE" {
						problems = append(problems, fmt.Sprintf("%s: commitment %s on %s: %s %v", sid, infos[0].CommitmentID, nd.Name, c.State, err))
					}
				}
			default:
				problems = append(problems, fmt.Sprintf("%s: %s with %d messages", sid, st, len(infos[0].Messages)))
			}
		}
		return len(problems) == 0
	})
	t.Logf("outcomes: %v", outcomes)
	for _, nd := range net.Nodes {
		t.Logf("%s: %s", nd.Name, counters(ctx, nd, "asp_resends_total", "asp_session_reconciliations_total", "asp_sessions_ended_diverged_total"))
	}
	if err != nil {
		t.Fatalf("%d sessions not settled: %v:\n%s", len(problems), err, strings.Join(problems[:min(len(problems), 20)], "\n"))
	}
	// The kill must have caught the vendor's node with moves recorded but
	// not acknowledged, or the run proves nothing about resends.
	if resent := counterValue(ctx, n1, "asp_resends_total"); resent < 1 {
		t.Fatalf("the restarted node resent nothing (%s): the kill hit no move in flight; raise ASP_CRASH_NEGOTIATIONS", counters(ctx, n1, "asp_resends_total"))
	}
	if err := net.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, nd := range net.Nodes {
		auditVerify(t, nd.Home)
	}
}

func sameMessages(a, b []json.RawMessage) bool {
	return slices.EqualFunc(a, b, func(x, y json.RawMessage) bool { return string(x) == string(y) })
}

// negotiate plays one negotiation between the buyer (clients[0]) and the
// vendor (clients[1]) and returns its session id: PROPOSE 2.40, COUNTER
// 2.80, PROPOSE 2.55, ACCEPT. The next move is read from the buyer's
// transcript (whose turn, which performative), made once the mover's node
// holds the whole transcript, and retried, whatever the error, until the
// transcript moves on: a move recorded but not yet acknowledged is resent
// by the node itself. (An agent retrying an unanswered PROPOSE may make a
// second PROPOSE; the vendor then accepts the latest.) moved is called for
// every move its node acknowledged. It fails only when ctx ends first.
func negotiate(ctx context.Context, clients [2]func() *client.Client, vendorID string, moved func()) (string, error) {
	var sid string
	for sid == "" {
		s, err := clients[0]().OpenSession(ctx, vendorID)
		if err == nil {
			sid = s.SessionID
			break
		}
		if ctx.Err() != nil {
			return "", fmt.Errorf("open: %w", err)
		}
		pause(ctx)
	}
	deliverBy := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 1, 0)
	type msg struct {
		MessageID    string `json:"messageId"`
		Sender       string `json:"sender"`
		Performative string `json:"performative"`
	}
	var lastErr error
	for {
		if ctx.Err() != nil {
			return sid, fmt.Errorf("negotiation not finished: %v", lastErr)
		}
		info, err := clients[0]().Session(ctx, sid)
		if err != nil {
			lastErr = err
			pause(ctx)
			continue
		}
		if info.State == "CLOSED" || info.State == "FAILED" {
			return sid, nil
		}
		var tr []msg
		for _, raw := range info.Messages {
			var m msg
			if err := json.Unmarshal(raw, &m); err != nil {
				return sid, err
			}
			tr = append(tr, m)
		}
		last := tr[len(tr)-1]
		countered := slices.ContainsFunc(tr, func(m msg) bool { return m.Performative == "COUNTER" })
		mover, req := 0, api.SendMessageRequest{}
		switch {
		case len(tr) == 2:
			req = api.SendMessageRequest{Performative: "PROPOSE", Terms: scenario.Terms("2.40", deliverBy)}
		case last.Sender == vendorID && last.Performative == "ACCEPT":
			return sid, nil
		case last.Sender == vendorID && last.Performative == "COUNTER":
			req = api.SendMessageRequest{Performative: "PROPOSE", Terms: scenario.Terms("2.55", deliverBy)}
		case last.Performative == "PROPOSE" && !countered:
			mover, req = 1, api.SendMessageRequest{Performative: "COUNTER", ReferenceID: last.MessageID, Terms: scenario.Terms("2.80", deliverBy)}
		case last.Performative == "PROPOSE":
			mover, req = 1, api.SendMessageRequest{Performative: "ACCEPT", ReferenceID: last.MessageID}
		default:
			return sid, fmt.Errorf("unexpected %s from %s after %d messages", last.Performative, last.Sender, len(tr))
		}
		c := clients[mover]()
		if mover == 1 {
			// The vendor's node must hold the buyer's last move first.
			v, err := c.Session(ctx, sid)
			if err != nil || len(v.Messages) < len(tr) {
				lastErr = err
				pause(ctx)
				continue
			}
		}
		if _, err := c.Send(ctx, sid, req); err != nil {
			lastErr = err
			pause(ctx)
			continue
		}
		moved()
	}
}

// counters reads the named counters from nd's /metrics.
func counters(ctx context.Context, nd *procnet.Node, names ...string) string {
	req, err := http.NewRequestWithContext(ctx, "GET", nd.APIURL()+"/metrics", nil)
	if err != nil {
		return err.Error()
	}
	req.Header.Set("Authorization", "Bearer "+nd.Admin().Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		for _, name := range names {
			if strings.HasPrefix(line, name+" ") {
				out = append(out, line)
			}
		}
	}
	return strings.Join(out, ", ")
}

func pause(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(50 * time.Millisecond):
	}
}

// counterValue is one counter of nd's metrics, or -1 if it cannot be read.
func counterValue(ctx context.Context, nd *procnet.Node, name string) float64 {
	f := strings.Fields(counters(ctx, nd, name))
	if len(f) != 2 {
		return -1
	}
	v, err := strconv.ParseFloat(f[1], 64)
	if err != nil {
		return -1
	}
	return v
}
